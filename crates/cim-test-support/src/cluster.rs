//! A JetStream cluster of nats-server processes on loopback.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use async_nats::jetstream;

use cim_nats_server::{ClusterConfig, Health};

use crate::server::{NatsServer, StartError};

const FORM_TIMEOUT: Duration = Duration::from_secs(60);
const ATTEMPTS: usize = 5;

/// A JetStream cluster of durable nodes named `n0`, `n1`, …, each with its own
/// store; every node is killed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until every node is healthy and the
    /// JetStream meta leader answers API requests.
    ///
    /// # Panics
    /// If `size < 2` (JetStream clustering needs routes) or the cluster does
    /// not form.
    pub async fn start(size: usize) -> Self {
        assert!(size >= 2, "a JetStream cluster needs at least two nodes, not {size}");
        let name = crate::unique_name("cim");
        let mut attempt = 1;
        loop {
            let mut cluster = Self::spawn(&name, size);
            match cluster.wait_formed().await {
                Ok(()) => return cluster,
                // A reserved cluster port was taken before the node bound it.
                Err(e) if e.addr_in_use && attempt < ATTEMPTS => attempt += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The client URLs of all nodes, as `async_nats::connect` takes them
    /// (`async_nats::connect(cluster.urls())`); join them with `,` for tools
    /// that want one string.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Node `index` (`n{index}`).
    pub fn node(&self, index: usize) -> &NatsServer {
        &self.nodes[index]
    }

    /// SIGKILLs node `index`; see [`NatsServer::kill`].
    pub fn kill_node(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Restarts node `index` on its ports with its store. While a majority of
    /// nodes runs, this also waits until the node reports itself current with
    /// the cluster (full `/healthz`; stream leaders may take a moment longer
    /// to list it as current); without a quorum it cannot be, so it returns
    /// once the node serves clients.
    ///
    /// # Panics
    /// If the node does not become healthy.
    pub async fn restart_node(&mut self, index: usize) {
        self.nodes[index].restart().await;
        let running = self.nodes.iter_mut().map(NatsServer::is_running).filter(|&running| running).count();
        if running * 2 > self.nodes.len() {
            let deadline = Instant::now() + FORM_TIMEOUT;
            self.nodes[index].wait_healthy(Health::Full, deadline).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// A client that knows every node, so it fails over when one is killed.
    ///
    /// # Panics
    /// If no node accepts the connection.
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::connect(self.urls()).await.unwrap_or_else(|e| panic!("cannot connect to {:?}: {e}", self.urls()))
    }

    /// Spawns every node with routes to all the others.
    fn spawn(name: &str, size: usize) -> Self {
        let ports = reserve_ports(size);
        let nodes = (0..size)
            .map(|index| {
                let cluster = ClusterConfig {
                    name: name.to_owned(),
                    port: ports[index],
                    routes: ports
                        .iter()
                        .enumerate()
                        .filter(|&(peer, _)| peer != index)
                        .map(|(_, &port)| port)
                        .collect(),
                };
                let mut node = NatsServer::builder().cluster_member(format!("n{index}"), cluster).build();
                node.spawn();
                node
            })
            .collect();
        Self { nodes }
    }

    async fn wait_formed(&mut self) -> Result<(), StartError> {
        for node in &mut self.nodes {
            node.wait_ready().await?;
        }
        let deadline = Instant::now() + FORM_TIMEOUT;
        for node in &mut self.nodes {
            node.wait_healthy(Health::Full, deadline).await?;
        }
        let js = jetstream::new(self.connect().await);
        loop {
            match js.query_account().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(StartError::new(format!("the cluster elected no JetStream meta leader in time: {e}")));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Free ports for the cluster listeners. Every node's routes name the others'
/// cluster ports before any node starts, so nats-server's own choice of a
/// free port (`-1`) cannot be used here: bind port 0, note the port, release
/// it; [`NatsCluster::start`] retries if one was taken in between.
fn reserve_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port")).collect();
    listeners.iter().map(|listener| listener.local_addr().expect("local address of a bound listener").port()).collect()
}
