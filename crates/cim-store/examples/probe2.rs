use std::time::Instant;
use async_nats::jetstream::{self, message::PublishMessage};
#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap();
    let writers: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let name = format!("RAW{}", std::process::id());
    js.create_stream(jetstream::stream::Config { name: name.clone(), subjects: vec![format!("{name}.>")], ..Default::default() }).await.unwrap();
    let t = Instant::now();
    let mut tasks = vec![];
    for w in 0..writers {
        let js = js.clone(); let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for i in 0..200u64 {
                let m = PublishMessage::build().payload(vec![0u8; 200].into()).message_id(format!("{w}-{i}")).expected_last_subject_sequence(last);
                last = js.send_publish(format!("{name}.{w}"), m).await.unwrap().await.unwrap().sequence;
            }
        }));
    }
    for t in tasks { t.await.unwrap(); }
    let n = 200 * writers;
    println!("raw writers={writers}: {n} in {:?} = {:.0}/s", t.elapsed(), n as f64 / t.elapsed().as_secs_f64());
}
