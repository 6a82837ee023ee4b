//! The listing's guards, pure and table-tested: what the sweep refuses to follow (a marker that
//! does not advance, comes back after other pages, or pages that bring nothing for ever) and the
//! uploads it must not process twice (a store that repeats some).

use crate::store::{Marker, Upload};

/// The uploads of the listing's current and previous pages, to process each upload once although
/// a store repeats one: an inclusive key marker gives the last upload of a page again at the start
/// of the next (scality backbeat #247), and a store that ignores the marker gives the same page
/// again before the marker check stops the listing. Memory is two pages, whatever the bucket's
/// size: on a listing ordered by key, an entry before the marker's key was given before and is a
/// repeat however far back; an unordered listing (directory buckets, vaults) can only be checked
/// against the previous page.
#[derive(Default)]
pub(super) struct Repeats {
    previous: std::collections::HashSet<(String, String)>,
    current: std::collections::HashSet<(String, String)>,
}

impl Repeats {
    /// A new page begins.
    pub(super) fn next_page(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Whether `u` was given before (and, if not, remembers it).
    pub(super) fn is_repeat(&mut self, u: &Upload, marker: Option<&Marker>, ordered: bool) -> bool {
        if ordered && marker.is_some_and(|m| u.key < m.key) {
            return true;
        }
        let id = (u.key.clone(), u.upload_id.clone());
        self.previous.contains(&id) || !self.current.insert(id)
    }
}

pub(super) use crate::store::MAX_EMPTY_PAGES;

/// The markers a listing has followed, by hash (8 bytes a page): a marker that comes back at any
/// earlier point of the listing is a cycle, not only one that repeats the previous page's (a
/// Glacier vault's opaque markers going A, B, A, B).
#[derive(Default)]
pub(super) struct Markers(std::collections::HashSet<u64>);

impl Markers {
    /// Why following `next` would cycle, if it would; remembers it otherwise.
    pub(super) fn cycle(&mut self, next: &Marker) -> Option<String> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(next);
        (!self.0.insert(h)).then(|| {
            format!(
                "the server's page marker (key {:?}, upload id {:?}) came back after other pages: the listing cycles; refusing to loop",
                next.key, next.upload_id
            )
        })
    }
}

/// Why a next-page marker cannot be followed, if it cannot: it repeats the current one, or goes back
/// to an earlier key. (Upload ids are opaque, so only keys are compared for order.)
pub(super) fn not_advancing(
    current: Option<&Marker>,
    next: &Marker,
    ordered: bool,
) -> Option<String> {
    let current = current?;
    if current == next {
        return Some(format!(
            "the server returned the same page marker twice (key {:?}, upload id {:?}): refusing to loop",
            next.key, next.upload_id
        ));
    }
    if ordered && next.key < current.key {
        return Some(format!(
            "the server's next key marker {:?} goes back before {:?}: refusing to loop",
            next.key, current.key
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(key: &str, id: Option<&str>) -> Marker {
        Marker {
            key: key.into(),
            upload_id: id.map(str::to_string),
        }
    }

    fn up(key: &str, id: &str) -> Upload {
        Upload {
            key: key.into(),
            upload_id: id.into(),
            initiated: None,
            part_size: None,
        }
    }

    #[test]
    fn an_upload_given_again_by_the_listing_is_a_repeat_and_memory_is_two_pages() {
        let mut r = Repeats::default();
        r.next_page();
        assert!(!r.is_repeat(&up("a", "1"), None, true));
        assert!(!r.is_repeat(&up("b", "1"), None, true));
        assert!(r.is_repeat(&up("b", "1"), None, true), "twice in one page");
        // An inclusive marker: the next page starts again with the last upload.
        let marker = m("b", Some("1"));
        r.next_page();
        assert!(r.is_repeat(&up("b", "1"), Some(&marker), true));
        assert!(
            !r.is_repeat(&up("b", "2"), Some(&marker), true),
            "another upload of the same key"
        );
        assert!(
            r.is_repeat(&up("a", "1"), Some(&marker), true),
            "before the marker's key"
        );
        // Unordered (a vault): only the previous page is remembered.
        assert!(!r.is_repeat(&up("a", "9"), Some(&marker), false));
        r.next_page();
        r.next_page();
        assert!(
            !r.is_repeat(&up("b", "2"), None, false),
            "two pages back is forgotten"
        );
        assert_eq!(r.previous.len() + r.current.len(), 1);
    }

    #[test]
    fn a_marker_that_comes_back_after_other_pages_is_a_cycle() {
        let mut seen = Markers::default();
        assert_eq!(seen.cycle(&m("a", None)), None);
        assert_eq!(seen.cycle(&m("b", None)), None);
        let e = seen.cycle(&m("a", None)).expect("A, B, A cycles");
        assert!(e.contains("came back after other pages"), "{e}");
        assert_eq!(
            seen.cycle(&m("a", Some("2"))),
            None,
            "another upload id is another marker"
        );
    }

    #[test]
    fn markers_must_advance() {
        let table = [
            (None, m("a", None), false),
            (Some(m("a", Some("2"))), m("a", Some("3")), false),
            (Some(m("a", Some("3"))), m("a", Some("2")), false), // ids are opaque: no order check
            (Some(m("a", None)), m("b", None), false),
            (Some(m("a", Some("1"))), m("a", Some("1")), true),
            (Some(m("a", None)), m("a", None), true),
            (Some(m("b", None)), m("a", Some("9")), true),
        ];
        for (cur, next, stuck) in table {
            assert_eq!(
                not_advancing(cur.as_ref(), &next, true).is_some(),
                stuck,
                "{cur:?} -> {next:?}"
            );
        }
    }
}
