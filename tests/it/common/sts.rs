//! A real STS: moto's server mode (`moto_server`, from `pip install "moto[server]"`; scripts/test.sh
//! installs 5.2.1), started on a free loopback port with its log in a temp dir. The temporary keys
//! it issues are read back from its state (`GET /moto-api/data.json`), so that s3-mem can verify the
//! S3 requests signed with them ([`Moto::key_lookup`] for `Endpoint::set_key_lookup`).
//!
//! [`Moto::start`] grants every AssumeRole, whoever signs it. [`Moto::start_with_auth`] turns on
//! moto's IAM enforcement, so that AssumeRole is granted for [`ALLOWED_ROLE`] and refused
//! (`AccessDenied`) for any other role, [`DENIED_ROLE`] included, to the keys of
//! [`Moto::base_keys`].

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{free_port, wait_until};

/// The role [`Moto::start_with_auth`]'s user may assume (in moto's default account, its user's).
pub const ALLOWED_ROLE: &str = "arn:aws:iam::123456789012:role/allowed";
/// A role [`Moto::start_with_auth`]'s user may not assume: AssumeRole answers `AccessDenied`.
pub const DENIED_ROLE: &str = "arn:aws:iam::123456789012:role/denied";

/// How long moto gets to answer HTTP after being spawned (it takes 1 to 3 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `moto_server`, killed when dropped.
pub struct Moto {
    child: Child,
    addr: String,
    base_keys: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// A session moto issued for an AssumeRole, as its state lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumedRole {
    /// The temporary access key (`ASIA…`).
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The session token sent as `x-amz-security-token` with the temporary key.
    pub session_token: String,
    /// The role assumed (`arn:aws:iam::ACCOUNT:role/NAME`).
    pub role_arn: String,
    /// `RoleSessionName` of the call.
    pub session_name: String,
    /// `ExternalId` of the call, if it had one.
    pub external_id: Option<String>,
    /// The account of the role's ARN.
    pub account_id: String,
}

impl Moto {
    /// Starts moto granting every call to anyone (no IAM enforcement), and waits until it answers.
    pub fn start() -> Moto {
        Self::spawn()
    }

    /// Starts moto, creates an IAM user `janitor` with an access key and an inline policy allowing
    /// `sts:AssumeRole` on [`ALLOWED_ROLE`] only, then turns on moto's IAM enforcement: from then
    /// on every call must be signed (moto checks the `SigV4` signature) by a key moto knows, and be
    /// allowed by that key's policies. AssumeRole of [`ALLOWED_ROLE`] with [`Moto::base_keys`]
    /// succeeds; of any other role, [`DENIED_ROLE`] included, answers `403 AccessDenied`.
    pub fn start_with_auth() -> Moto {
        let mut moto = Self::spawn();
        moto.iam(&[("Action", "CreateUser"), ("UserName", "janitor")]);
        let created = moto.iam(&[("Action", "CreateAccessKey"), ("UserName", "janitor")]);
        let key = element(&created, "AccessKeyId").expect("CreateAccessKey's AccessKeyId");
        let secret = element(&created, "SecretAccessKey").expect("CreateAccessKey's secret");
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{ALLOWED_ROLE}"}}]}}"#
        );
        moto.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "janitor"),
            ("PolicyName", "assume-allowed-only"),
            ("PolicyDocument", &policy),
        ]);
        // moto authenticates every call after its first INITIAL_NO_AUTH_ACTION_COUNT (infinite
        // unless set); this endpoint (what moto's own `set_initial_no_auth_action_count` uses in
        // server mode) sets that count and restarts the counting: 0 enforces from the next call.
        let (status, body) = post(&moto.addr, "/moto-api/reset-auth", "text/plain", &[], "0")
            .expect("moto answers /moto-api/reset-auth");
        assert_eq!(status, 200, "moto's reset-auth: {body}");
        moto.base_keys = Some((key, secret));
        moto
    }

    fn spawn() -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("moto_server (pip install \"moto[server]\"; scripts/test.sh installs it)");
        let addr = format!("127.0.0.1:{port}");
        wait_until("moto_server to answer HTTP", START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("moto_server exited ({status}) before answering:\n{log}");
            }
            super::http::get(&addr, "/moto-api/data.json").is_some_and(|(s, _)| s == 200)
        });
        Moto {
            child,
            addr,
            base_keys: None,
            _dir: dir,
        }
    }

    /// An IAM Query API call, before enforcement is on (the signature is a stand-in: moto only
    /// reads the credential scope, to route the call to IAM); its XML answer.
    fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut form = String::from("Version=2010-05-08");
        for (k, v) in params {
            form.push_str(&format!(
                "&{k}={}",
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            ));
        }
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAMOTOSETUP/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
        let (status, body) = post(
            &self.addr,
            "/",
            "application/x-www-form-urlencoded; charset=utf-8",
            &[("Authorization", auth)],
            &form,
        )
        .expect("moto answers IAM");
        assert_eq!(status, 200, "moto IAM {params:?}: {body}");
        body
    }

    /// `http://127.0.0.1:PORT`, the endpoint of its STS (and of every other service it mocks).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The access key and secret of the IAM user [`Moto::start_with_auth`] created; panics for a
    /// moto started with [`Moto::start`].
    pub fn base_keys(&self) -> (String, String) {
        self.base_keys
            .clone()
            .expect("base keys exist only for Moto::start_with_auth")
    }

    /// Every session moto issued so far, oldest first.
    pub fn assumed_roles(&self) -> Vec<AssumedRole> {
        assumed_roles_at(&self.addr)
    }

    /// The secret of a temporary access key moto issued, if it issued it.
    #[allow(dead_code)] // The behaviour files pass [`Moto::key_lookup`] instead, so far.
    pub fn secret_of(&self, access_key: &str) -> Option<String> {
        secret_at(&self.addr, access_key)
    }

    /// [`Moto::secret_of`] as a lookup that outlives `self`'s borrow, for s3-mem's
    /// `Endpoint::set_key_lookup` (it blocks on HTTP; s3-mem runs it on the blocking pool).
    pub fn key_lookup(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let addr = self.addr.clone();
        move |access_key| secret_at(&addr, access_key)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secret_at(addr: &str, access_key: &str) -> Option<String> {
    assumed_roles_at(addr)
        .into_iter()
        .find(|r| r.access_key_id == access_key)
        .map(|r| r.secret_access_key)
}

/// The `sts.AssumedRole` list of moto's `/moto-api/data.json` (empty if moto does not answer).
fn assumed_roles_at(addr: &str) -> Vec<AssumedRole> {
    let Some((200, body)) = super::http::get(addr, "/moto-api/data.json") else {
        return Vec::new();
    };
    let data: serde_json::Value = serde_json::from_str(&body).expect("moto's data.json is JSON");
    let text = |v: &serde_json::Value, field: &str| v[field].as_str().map(str::to_string);
    data["sts"]["AssumedRole"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .map(|r| AssumedRole {
                    access_key_id: text(r, "access_key_id").unwrap_or_default(),
                    secret_access_key: text(r, "secret_access_key").unwrap_or_default(),
                    session_token: text(r, "session_token").unwrap_or_default(),
                    role_arn: text(r, "role_arn").unwrap_or_default(),
                    session_name: text(r, "session_name").unwrap_or_default(),
                    external_id: text(r, "external_id"),
                    account_id: text(r, "account_id").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A POST over plain HTTP/1.0: (status, body), or None if nothing listens.
fn post(
    addr: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The text of the first `<tag>` element of an XML answer.
fn element(xml: &str, tag: &str) -> Option<String> {
    let (_, rest) = xml.split_once(&format!("<{tag}>"))?;
    let (value, _) = rest.split_once(&format!("</{tag}>"))?;
    Some(value.to_string())
}
