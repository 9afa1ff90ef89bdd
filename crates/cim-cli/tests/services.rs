//! The services as real processes — `cim-registry` and `cim-ius` started
//! from config files on a real nats-server — for `cim units` and
//! `cim registry`.

use std::time::{Duration, Instant};

use cim_registry_api::ComponentQuery;
use cim_test_support::{ServiceProcess, service_config, workspace_binary};

use crate::common::{Env, Run};

/// The largest unit (content and metadata) the IUS accepts here.
pub const MAX_UNIT_BYTES: usize = 8192;

/// A nats-server, a registry and one IUS, both registered, sharing the
/// store namespace that `cim` uses.
pub struct Services {
    pub env: Env,
    pub registry: ServiceProcess,
    pub ius: ServiceProcess,
    _dir: tempfile::TempDir,
}

impl Services {
    pub async fn start() -> Self {
        let env = Env::new().await;
        // As cim-provision.service does: the components only attach.
        let provisioned = env.cim(&["--json", "provision"]).json();
        assert_eq!(provisioned["component_buckets"][0]["bucket"], format!("{}-components", env.namespace));
        let dir = tempfile::tempdir().unwrap();
        let store = format!("[store]\nnamespace = \"{}\"\n", env.namespace);
        let registry = ServiceProcess::start(
            workspace_binary("cim-registry", "cim-registry"),
            dir.path(),
            "registry",
            &service_config(&env.server, "r1", &format!("{store}[registry]\ncomponent_ttl_secs = 3\n")),
        );
        let ius = ServiceProcess::start(
            workspace_binary("cim-ius", "cim-ius"),
            dir.path(),
            "ius",
            &service_config(&env.server, "i1", &format!("{store}[ius]\nmax_unit_bytes = {MAX_UNIT_BYTES}\n")),
        );
        let services = Self { env, registry, ius, _dir: dir };
        services.wait_registered().await;
        services
    }

    /// `cim --nats <url> --namespace <ns> args…`.
    pub fn cim(&self, args: &[&str]) -> Run {
        self.env.cim(args)
    }

    /// `cim --json …`, asserting success.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.cim(&all).json()
    }

    /// Events and objects in the store, per `cim status`.
    pub fn counts(&self) -> (u64, u64) {
        let (events, objects, _) = self.env.counts(&self.env.namespace);
        (events, objects)
    }

    /// Waits until both services are in the registry.
    async fn wait_registered(&self) {
        let client = cim_registry_api::Client::new(self.env.server.connect().await, Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listed = client.components(&ComponentQuery::default()).await;
            let names: Vec<String> =
                listed.map(|l| l.components.into_iter().map(|c| c.registration.name).collect()).unwrap_or_default();
            if names.iter().any(|n| n == "cim-registry") && names.iter().any(|n| n == "cim-ius") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the services did not register ({names:?});\nregistry log:\n{}\nius log:\n{}",
                self.registry.log(),
                self.ius.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A valid `width`×`height` 8-bit greyscale PNG: signature, IHDR, one IDAT
/// holding a zlib stream of one stored (uncompressed) deflate block, IEND.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend(kind);
        png.extend(data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    }
    // Each row: filter type 0, then one byte per pixel.
    let rows: Vec<u8> =
        (0..height).flat_map(|y| std::iter::once(0).chain((0..width).map(move |x| ((x + y) * 40) as u8))).collect();
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &rows {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    let len = u16::try_from(rows.len()).expect("a small image");
    let mut zlib = vec![0x78, 0x01, 0x01]; // zlib header; final stored block
    zlib.extend(len.to_le_bytes());
    zlib.extend((!len).to_le_bytes());
    zlib.extend(&rows);
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 0, 0, 0, 0]); // 8 bits, greyscale, deflate, no filter method, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}
