use std::time::Instant;
use cim_store::*;
#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap();
    let mode = std::env::args().nth(2).unwrap();
    let writers: usize = std::env::args().nth(3).unwrap().parse().unwrap();
    let commit = if mode == "direct" { CommitMode::Direct } else { CommitMode::Grouped };
    let ns = format!("p{}", std::process::id());
    let store = EventStore::open(async_nats::connect(url).await.unwrap(), StoreConfig { namespace: ns, commit, ..Default::default() }).await.unwrap();
    let t = Instant::now();
    let mut tasks = vec![];
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let k = AggregateKey::new("a", format!("w{w}")).unwrap();
            for i in 0..200u64 {
                store.append(&k, ExpectedVersion::Exact(i), vec![NewEvent::new("E", Ipld::Integer(i as i128))]).await.unwrap();
            }
        }));
    }
    for t in tasks { t.await.unwrap(); }
    let n = 200 * writers;
    println!("{mode} writers={writers}: {n} in {:?} = {:.0}/s", t.elapsed(), n as f64 / t.elapsed().as_secs_f64());
}
