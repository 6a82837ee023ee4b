//! Reading the XML answers of the lean path, strictly: a document is read into a small element
//! tree by [`parse`], which refuses anything that is not well-formed (a mismatched or missing end
//! tag, text or a second element after the root, nesting deeper than any S3 answer), saying what
//! was wrong and at which byte. Inside a well-formed document, one unreadable entry (a field that
//! is missing, not a number or a date, or holds a character XML cannot carry) is that entry's
//! problem: ListMultipartUploads reports it as [`Unreadable`] and reads the rest of the page.

use std::borrow::Cow;

use aws_smithy_types::date_time::Format;
use chrono::{DateTime, Utc};
use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;

use super::{MAX_GENEROUS_PAGE, Part, PartsPage, Unreadable, Upload, to_chrono};

/// Deeper than any S3 answer (ListMultipartUploadsResult > Upload > Owner > ID is 4).
const MAX_DEPTH: usize = 16;

/// One element: its local name, its child elements and its own text (entities resolved).
#[derive(Debug, Default)]
pub(super) struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
    /// The text held bytes that are not UTF-8, an unknown entity, or a control character XML 1.0
    /// cannot carry: what it says cannot be trusted.
    unreadable: bool,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The exact text of child `name` (keys, ids and markers: every character counts, leading
    /// and trailing blanks included): `Ok(None)` when absent, `Err` when unreadable.
    fn exact(&self, name: &str) -> Result<Option<&str>, String> {
        match self.child(name) {
            None => Ok(None),
            Some(c) if c.unreadable => Err(format!(
                "{name} holds characters XML cannot carry: {:?}",
                c.text
            )),
            Some(c) => Ok(Some(c.text.as_str())),
        }
    }

    /// The text of child `name` without surrounding blanks (numbers, dates, flags).
    fn field(&self, name: &str) -> Result<Option<&str>, String> {
        Ok(self.exact(name)?.map(str::trim))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.field(name)?
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("{name} is {s:?}, not a number"))
            })
            .transpose()
    }

    fn date(&self, name: &str) -> Result<Option<DateTime<Utc>>, String> {
        self.field(name)?
            .map(|s| read_time(s).ok_or_else(|| format!("{name} is {s:?}, not a date")))
            .transpose()
    }

    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.field(name)? {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!("{name} is {other:?}, not true or false")),
        }
    }
}

/// A time as S3 and the stores known to differ from it write one: ISO 8601 / RFC 3339 in UTC
/// (`Z`) with or without fractional seconds, or with any offset (`+02:00`), which is kept as the
/// instant it names.
pub(super) fn read_time(s: &str) -> Option<DateTime<Utc>> {
    aws_smithy_types::DateTime::from_str(s, Format::DateTime)
        .ok()
        .as_ref()
        .and_then(to_chrono)
        .or_else(|| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

/// Reads a whole document into its root element, refusing anything that is not well-formed.
pub(super) fn parse(body: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(body);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        let open = |name: &[u8]| {
            if root.is_some() {
                return Err(format!("a second root element at byte {at}"));
            }
            Ok(Element {
                name: local(name),
                ..Element::default()
            })
        };
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!(
                        "nested deeper than {MAX_DEPTH} elements at byte {at}"
                    ));
                }
                stack.push(open(e.name().as_ref())?);
            }
            Event::Empty(e) => {
                let element = open(e.name().as_ref())?;
                close(&mut stack, &mut root, element);
            }
            Event::End(_) => {
                // quick-xml has checked that the name matches the open element.
                let element = stack
                    .pop()
                    .ok_or_else(|| format!("an end tag with no start at byte {at}"))?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let text = String::from_utf8_lossy(t.as_ref());
                match stack.last_mut() {
                    Some(element) => append(element, &text),
                    None if text.trim().is_empty() => {}
                    None => return Err(format!("text outside the root element at byte {at}")),
                }
            }
            Event::CData(t) => match stack.last_mut() {
                Some(element) => append(element, &String::from_utf8_lossy(t.as_ref())),
                None => return Err(format!("CDATA outside the root element at byte {at}")),
            },
            Event::GeneralRef(r) => {
                let Some(element) = stack.last_mut() else {
                    return Err(format!("an entity outside the root element at byte {at}"));
                };
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                match r.resolve_char_ref() {
                    Ok(Some(c)) => append(element, c.encode_utf8(&mut [0; 4])),
                    Ok(None) => match resolve_xml_entity(&name) {
                        Some(s) => append(element, s),
                        None => {
                            element.text.push_str(&format!("&{name};"));
                            element.unreadable = true;
                        }
                    },
                    Err(_) => {
                        element.text.push_str(&format!("&{name};"));
                        element.unreadable = true;
                    }
                }
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(format!("a DOCTYPE at byte {at}: not an S3 answer")),
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(format!(
                        "the document ends inside <{}> at byte {at}: the answer is cut short",
                        open.name
                    ));
                }
                return root.ok_or_else(|| "no root element: not an XML answer".to_string());
            }
        }
    }
}

/// The local part of a qualified name (`s3:Key` -> `Key`).
fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append(element: &mut Element, text: &str) {
    let bad = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r') || c == '\u{FFFD}';
    element.unreadable |= text.chars().any(bad);
    element.text.push_str(text);
}

fn expect_root<'a>(doc: &'a Element, name: &str) -> Result<&'a Element, String> {
    if doc.name == name {
        Ok(doc)
    } else {
        Err(format!("the root element is <{}>, not <{name}>", doc.name))
    }
}

/// One ListMultipartUploads page as read: the uploads, the entries that could not be read, and
/// the raw truncation fields (the caller turns them into a marker).
#[derive(Debug, Default)]
pub(super) struct UploadsPage {
    pub(super) uploads: Vec<Upload>,
    pub(super) unreadable: Vec<Unreadable>,
    pub(super) truncated: bool,
    pub(super) next_key: Option<String>,
    pub(super) next_upload_id: Option<String>,
}

/// One ListMultipartUploads page.
pub(super) fn parse_list_uploads(body: &[u8]) -> Result<UploadsPage, String> {
    let doc = parse(body)?;
    let root = expect_root(&doc, "ListMultipartUploadsResult")?;
    let entries = root.children("Upload").count();
    if entries > MAX_GENEROUS_PAGE {
        return Err(format!(
            "{entries} uploads in one page: more than {MAX_GENEROUS_PAGE} (1,000 were asked for)"
        ));
    }
    let mut page = UploadsPage {
        truncated: root.flag("IsTruncated")?,
        next_key: root.exact("NextKeyMarker")?.map(str::to_string),
        next_upload_id: root.exact("NextUploadIdMarker")?.map(str::to_string),
        ..UploadsPage::default()
    };
    for entry in root.children("Upload") {
        match read_upload(entry) {
            Ok(u) => page.uploads.push(u),
            Err(problem) => page.unreadable.push(Unreadable {
                key: lossy_field(entry, "Key"),
                upload_id: lossy_field(entry, "UploadId"),
                problem,
            }),
        }
    }
    Ok(page)
}

fn read_upload(entry: &Element) -> Result<Upload, String> {
    Ok(Upload {
        key: entry
            .exact("Key")?
            .map(str::to_string)
            .ok_or("the entry has no Key")?,
        upload_id: entry
            .exact("UploadId")?
            .map(str::to_string)
            .ok_or("the entry has no UploadId")?,
        initiated: entry.date("Initiated")?,
        part_size: None,
    })
}

/// A field's text as it came, for a report about an entry that could not be read.
fn lossy_field(entry: &Element, name: &str) -> String {
    entry
        .child(name)
        .map(|c| c.text.clone())
        .unwrap_or_default()
}

/// One ListParts page. Unlike a listing entry, a part that cannot be read makes the whole answer
/// unreadable: its upload is kept, since its bytes and its newest part are not known.
pub(super) fn parse_list_parts(body: &[u8]) -> Result<PartsPage, String> {
    let doc = parse(body)?;
    let root = expect_root(&doc, "ListPartsResult")?;
    let entries = root.children("Part").count();
    if entries > MAX_GENEROUS_PAGE {
        return Err(format!(
            "{entries} parts in one page: more than the {MAX_GENEROUS_PAGE} an upload may have"
        ));
    }
    let mut page = PartsPage {
        truncated: root.flag("IsTruncated")?,
        next: root
            .field("NextPartNumberMarker")?
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        parts: Vec::with_capacity(entries),
    };
    for part in root.children("Part") {
        let read = |part: &Element| -> Result<Part, String> {
            Ok(Part {
                number: part
                    .number("PartNumber")?
                    .ok_or("a part has no PartNumber")?,
                etag: part.exact("ETag")?.unwrap_or_default().to_string(),
                size: part.number("Size")?.ok_or("a part has no Size")?,
                last_modified: part.date("LastModified")?,
            })
        };
        page.parts
            .push(read(part).map_err(|e| format!("part {}: {e}", page.parts.len() + 1))?);
    }
    Ok(page)
}

/// Code and message of an S3 error document; `None` when the body is not one.
pub(super) fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let doc = parse(body).ok()?;
    let root = expect_root(&doc, "Error").ok()?;
    let text = |name| {
        root.child(name)
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default()
    };
    Some((text("Code"), text("Message")))
}

/// The start of a body that is not what was expected, printable, for an error message.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 120;
    let text: Cow<str> = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    if shown.is_empty() {
        "an empty body".to_string()
    } else if body.len() > MAX {
        format!("{shown:?}... ({} bytes)", body.len())
    } else {
        format!("{shown:?}")
    }
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
        let bad = parse_list_parts(
            b"<ListPartsResult><Part><PartNumber>x</PartNumber><Size>1</Size></Part></ListPartsResult>",
        )
        .unwrap_err();
        assert_eq!(bad, "part 1: PartNumber is \"x\", not a number");
    }

    const LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>c &amp; d</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>
  <MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>a&lt;b&#x41;</Key><UploadId>id1</UploadId>
    <Initiator><ID>x</ID><DisplayName>y</DisplayName></Initiator>
    <Initiated>2026-11-20T10:00:00.000Z</Initiated></Upload>
  <Upload><Key>c &amp; d</Key><UploadId>id2</UploadId><Initiated>yesterday</Initiated></Upload>
  <Upload><Key>e</Key><UploadId>id3</UploadId></Upload>
  <Upload><Key>  spaced out  </Key><UploadId>id4</UploadId></Upload>
</ListMultipartUploadsResult>"#;

    #[test]
    fn reads_a_listing_and_keeps_an_unreadable_entry_apart() {
        let page = parse_list_uploads(LISTING.as_bytes()).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next_key.as_deref(), Some("c & d"));
        assert_eq!(page.next_upload_id.as_deref(), Some("id2"));
        assert_eq!(page.uploads.len(), 3);
        assert_eq!(page.uploads[0].key, "a<bA");
        assert_eq!(
            page.uploads[2].key, "  spaced out  ",
            "keys are exact, blanks included"
        );
        assert!(page.uploads[0].initiated.is_some());
        // No Initiated at all: read, with an unknown time (the policy keeps it).
        assert_eq!(
            (page.uploads[1].key.as_str(), page.uploads[1].initiated),
            ("e", None)
        );
        assert_eq!(page.unreadable.len(), 1);
        let u = &page.unreadable[0];
        assert_eq!((u.key.as_str(), u.upload_id.as_str()), ("c & d", "id2"));
        assert_eq!(u.problem, "Initiated is \"yesterday\", not a date");
    }

    #[test]
    fn a_control_character_makes_only_its_entry_unreadable() {
        let body = LISTING.replace("<Key>e</Key>", "<Key>e\u{1}f</Key>");
        let page = parse_list_uploads(body.as_bytes()).unwrap();
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.unreadable.len(), 2);
        assert_eq!(page.unreadable[1].key, "e\u{1}f");
        assert!(
            page.unreadable[1]
                .problem
                .starts_with("Key holds characters XML cannot carry")
        );
    }

    #[test]
    fn documents_that_are_not_well_formed_are_refused_saying_where() {
        for (body, says) in [
            // A mismatched end tag, and no end of the root.
            (
                "<ListMultipartUploadsResult><Upload><Key>k</Kex></Upload>",
                "malformed XML at byte",
            ),
            (
                "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>",
                "ends inside <ListMultipartUploadsResult>",
            ),
            (
                "<ListMultipartUploadsResult/><ListMultipartUploadsResult/>",
                "a second root element",
            ),
            (
                "<ListMultipartUploadsResult/>trailing",
                "text outside the root element",
            ),
            (
                "<html><body>Bad gateway</body></html>",
                "the root element is <html>",
            ),
            ("", "no root element"),
            (
                "<ListMultipartUploadsResult><IsTruncated>maybe</IsTruncated></ListMultipartUploadsResult>",
                "IsTruncated is \"maybe\"",
            ),
        ] {
            let e = parse_list_uploads(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body:?}: {e}");
        }
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(
            parse(deep.as_bytes())
                .unwrap_err()
                .contains("nested deeper")
        );
    }

    #[test]
    fn times_are_read_with_any_offset_and_with_or_without_fractions() {
        let at = |s: &str| read_time(s).map(|t| t.to_rfc3339());
        let want = Some("2020-01-01T00:00:00+00:00".to_string());
        assert_eq!(at("2020-01-01T00:00:00Z"), want);
        assert_eq!(at("2020-01-01T00:00:00.000Z"), want);
        assert_eq!(at("2020-01-01T02:00:00+02:00"), want);
        assert_eq!(
            at("2019-12-31T19:00:00.5-05:00"),
            Some("2020-01-01T00:00:00.500+00:00".to_string())
        );
        assert_eq!(at("last tuesday"), None);
        assert_eq!(at("2020-01-01 00:00:00"), None, "no zone: not an instant");
    }

    #[test]
    fn a_generous_page_is_read_and_one_beyond_any_bound_is_refused() {
        // The JuiceFS gateway pages 10,000 uploads by default: 1,521 in one page are served.
        let entries = "<Upload><Key>k</Key><UploadId>u</UploadId><Initiated>2020-01-01T00:00:00Z</Initiated></Upload>".repeat(1521);
        let body = format!("<ListMultipartUploadsResult>{entries}</ListMultipartUploadsResult>");
        assert_eq!(
            parse_list_uploads(body.as_bytes()).unwrap().uploads.len(),
            1521
        );
        let entries = "<Upload><Key>k</Key><UploadId>u</UploadId></Upload>".repeat(10_001);
        let body = format!("<ListMultipartUploadsResult>{entries}</ListMultipartUploadsResult>");
        let e = parse_list_uploads(body.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "10001 uploads in one page: more than 10000 (1,000 were asked for)"
        );
    }

    #[test]
    fn reads_error_documents_and_tolerates_garbage() {
        let parsed = parse_error(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchUpload</Code><Message>gone &amp; done</Message></Error>",
        );
        assert_eq!(
            parsed,
            Some(("NoSuchUpload".to_string(), "gone & done".to_string()))
        );
        assert_eq!(parse_error(b""), None);
        assert_eq!(parse_error(b"<html>"), None);
        assert_eq!(snippet(b""), "an empty body");
        assert_eq!(
            snippet(b"<html>\n<body>Bad\tgateway"),
            "\"<html> <body>Bad gateway\""
        );
        assert!(snippet(&[b'x'; 500]).ends_with("... (500 bytes)"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A valid page of `n` uploads.
        fn page(n: usize) -> String {
            let mut xml = String::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult><IsTruncated>false</IsTruncated>",
            );
            for i in 0..n {
                xml.push_str(&format!(
                    "<Upload><Key>k{i} &amp; x</Key><UploadId>u{i}</UploadId><Initiated>2026-11-20T10:00:00.000Z</Initiated></Upload>"
                ));
            }
            xml.push_str("</ListMultipartUploadsResult>");
            xml
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            /// Any bytes at all: an answer or an error, never a panic.
            #[test]
            fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2_000)) {
                let _ = parse_list_uploads(&body);
                let _ = parse_list_parts(&body);
                let _ = parse_error(&body);
                let _ = snippet(&body);
            }

            /// A valid page cut short anywhere before its end is refused: nothing in it is read,
            /// so nothing in it can be aborted.
            #[test]
            fn a_page_cut_short_is_always_refused(n in 0usize..20, cut in any::<prop::sample::Index>()) {
                let full = page(n);
                let end = full.trim_end().len();
                let at = cut.index(end);
                prop_assert!(parse_list_uploads(&full.as_bytes()[..at]).is_err(), "cut at {at} of {end}");
            }

            /// A valid page with one byte replaced, removed or inserted: never a panic, and when it
            /// still parses, no more entries than the original, each read one with a key and an
            /// id free of `<` and control characters (`>` is legal text) (those land in the unreadable list).
            #[test]
            fn a_mutated_page_never_invents_an_upload(
                n in 1usize..10,
                at in any::<prop::sample::Index>(),
                byte in prop::sample::select(b"<>/&;=\"' \x01\x00xKU".to_vec()),
                op in 0u8..3,
            ) {
                let mut body = page(n).into_bytes();
                let i = at.index(body.len());
                match op {
                    0 => body[i] = byte,
                    1 => { body.remove(i); }
                    _ => body.insert(i, byte),
                }
                if let Ok(p) = parse_list_uploads(&body) {
                    prop_assert!(p.uploads.len() + p.unreadable.len() <= n, "{p:?}");
                    for u in &p.uploads {
                        prop_assert!(!u.key.is_empty() && !u.upload_id.is_empty(), "{u:?}");
                        prop_assert!(!u.key.contains(['<', '\u{0}', '\u{1}']), "{u:?}");
                    }
                }
            }
        }
    }
}
