//! Reading the XML answers of the lean path: a ListParts page and an S3 error document.

use aws_smithy_types::date_time::Format;
use aws_smithy_xml::decode::{Document as Xml, ScopedDecoder, try_data};

use crate::store::{Part, PartsPage, to_chrono};

/// One ListParts page.
pub(super) fn parse_list_parts(body: &[u8]) -> Result<PartsPage, String> {
    let mut doc = Xml::try_from(body).map_err(|e| e.to_string())?;
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    if !root.start_el().matches("ListPartsResult") {
        return Err(format!("root element {:?}", root.start_el().local()));
    }
    let mut page = PartsPage::default();
    while let Some(mut tag) = root.next_tag() {
        match tag.start_el().local() {
            "IsTruncated" => page.truncated = text(&mut tag)? == "true",
            "NextPartNumberMarker" => page.next = Some(text(&mut tag)?).filter(|m| !m.is_empty()),
            "Part" => {
                let mut part = Part {
                    number: 0,
                    etag: String::new(),
                    size: 0,
                    last_modified: None,
                };
                while let Some(mut field) = tag.next_tag() {
                    match field.start_el().local() {
                        "PartNumber" => part.number = number(&text(&mut field)?)?,
                        "ETag" => part.etag = text(&mut field)?,
                        "Size" => part.size = number::<i64>(&text(&mut field)?)?.max(0) as u64,
                        "LastModified" => {
                            part.last_modified = aws_smithy_types::DateTime::from_str(
                                &text(&mut field)?,
                                Format::DateTime,
                            )
                            .ok()
                            .as_ref()
                            .and_then(to_chrono)
                        }
                        _ => {}
                    }
                }
                page.parts.push(part);
            }
            _ => {}
        }
    }
    Ok(page)
}

/// Code and message of an S3 error document; empty when the body is not one.
pub(super) fn parse_error(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    let Ok(mut doc) = Xml::try_from(body) else {
        return (code, message);
    };
    let Ok(mut root) = doc.root_element() else {
        return (code, message);
    };
    while let Some(mut tag) = root.next_tag() {
        match tag.start_el().local() {
            "Code" => code = text(&mut tag).unwrap_or_default(),
            "Message" => message = text(&mut tag).unwrap_or_default(),
            _ => {}
        }
    }
    (code, message)
}

fn text(tag: &mut ScopedDecoder) -> Result<String, String> {
    try_data(tag)
        .map(|t| t.trim().to_string())
        .map_err(|e| e.to_string())
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_list_parts_page_with_escaped_etags() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-11-20T10:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><ETag>"def"</ETag><Size>7</Size></Part>
</ListPartsResult>"#;
        let page = parse_list_parts(body).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("2"));
        assert_eq!(page.parts.len(), 2);
        assert_eq!(page.parts[0].etag, "\"abc\"");
        assert_eq!(page.parts[0].size, 5_242_880);
        assert_eq!(
            page.parts[0].last_modified.map(|t| t.to_rfc3339()),
            Some("2026-11-20T10:00:00+00:00".to_string())
        );
        assert_eq!((page.parts[1].number, page.parts[1].size), (2, 7));
        assert!(parse_list_parts(b"<Error><Code>x</Code></Error>").is_err());
        assert!(parse_list_parts(b"not xml").is_err());
    }

    #[test]
    fn reads_error_documents_and_tolerates_garbage() {
        let (code, message) = parse_error(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchUpload</Code><Message>gone &amp; done</Message></Error>",
        );
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("NoSuchUpload", "gone & done")
        );
        assert_eq!(parse_error(b""), (String::new(), String::new()));
        assert_eq!(parse_error(b"<html>"), (String::new(), String::new()));
    }
}
