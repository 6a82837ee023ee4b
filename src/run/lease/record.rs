//! The lease's record and the pure decision of a claim: what is in the object, and what a
//! claimer does given what it read and the store's time.

use super::*;

/// The lease object's body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Who holds (or held) it, as configured (`[coordination] holder`, default `host:pid`).
    pub holder: String,
    /// A random id of the holding process: what "ours" means. The holder name alone cannot say
    /// it: two replicas given the same `holder` must still exclude each other.
    #[serde(default)]
    pub token: String,
    /// The start of the schedule period the sweep is for.
    pub period: DateTime<Utc>,
    /// When the lease lapses unless renewed, on the store's clock.
    pub expires: DateTime<Utc>,
    /// When the holder finished the period's sweep, on the store's clock; `None` while sweeping
    /// (or when it gave the lease up without finishing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swept_at: Option<DateTime<Utc>>,
}

/// What a read of the lease object found.
#[derive(Clone, Debug, PartialEq)]
pub enum Current {
    /// No lease object.
    Absent,
    /// An object that is not a lease record (taken over as if expired: nothing can hold it).
    Unreadable,
    /// A lease record.
    Record(Record),
}

/// What a claim does after reading the lease: the pure part of [`Leases::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No lease: create it (`If-None-Match: *`).
    Create,
    /// Expired, released, ours or unreadable: overwrite it (`If-Match: <its ETag>`).
    TakeOver,
    /// Swept in this period or a later one: skip.
    Swept {
        /// Who swept it.
        holder: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Held by another, not expired: skip.
    Held {
        /// Who holds it.
        holder: String,
        /// Until when.
        until: DateTime<Utc>,
    },
}

/// Decides a claim of `period` by the process `token` from what the read found, `store_now`
/// being the `Date` of the answer that read it.
///
/// In order: no lease -> create; unreadable -> take over; swept for this period or a later one ->
/// skip (whoever swept it, ourselves included); ours -> take over (rewrite for this period);
/// finished (swept an earlier period) -> take over; not expired -> held by another; expired ->
/// take over.
pub fn decide(
    current: &Current,
    token: &str,
    period: DateTime<Utc>,
    store_now: DateTime<Utc>,
) -> Decision {
    let r = match current {
        Current::Absent => return Decision::Create,
        Current::Unreadable => return Decision::TakeOver,
        Current::Record(r) => r,
    };
    match r.swept_at {
        Some(at) if r.period >= period => Decision::Swept {
            holder: r.holder.clone(),
            at,
        },
        _ if r.token == token => Decision::TakeOver,
        Some(_) => Decision::TakeOver,
        None if store_now < r.expires => Decision::Held {
            holder: r.holder.clone(),
            until: r.expires,
        },
        None => Decision::TakeOver,
    }
}

/// A stable, URL- and filesystem-safe name for a target's lease: a readable slug of the bucket and
/// prefix (`[a-z0-9-]`, at most 48 characters) and 16 hex digits of FNV-1a over the endpoint,
/// bucket and prefix (two stores may each have a bucket of the same name). Vaults and directory
/// buckets pass their label as `bucket`.
pub fn target_id(endpoint: &str, bucket: &str, prefix: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in endpoint
        .bytes()
        .chain([0])
        .chain(bucket.bytes())
        .chain([0])
        .chain(prefix.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut slug = String::new();
    for c in bucket.chars().chain(['-']).chain(prefix.chars()) {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
            slug.push(c);
        }
        if slug.len() >= 48 {
            break;
        }
    }
    format!("{}-{h:016x}", slug.trim_end_matches('-'))
}
