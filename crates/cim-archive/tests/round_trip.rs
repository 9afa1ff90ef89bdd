//! Export then import: every CID, chain, object and name comes back, in any
//! block order, and importing twice writes nothing the second time.

use std::sync::Mutex;

use cim_archive::car::{CarReader, write_block, write_header};
use cim_archive::{ExportSelection, Phase, Progress, Silent, export, import, verify};
use cim_cid::RAW;
use cim_test_support::NatsServer;

use crate::common::{Store, blocks, history, key};

/// Records every progress call.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(Phase, &'static str, u64)>>);

impl Progress for Recorder {
    fn start(&self, phase: Phase, total: u64) {
        self.0.lock().unwrap().push((phase, "start", total));
    }

    fn advance(&self, phase: Phase, amount: u64) {
        self.0.lock().unwrap().push((phase, "advance", amount));
    }

    fn finish(&self, phase: Phase) {
        self.0.lock().unwrap().push((phase, "finish", 0));
    }
}

impl Recorder {
    /// The total a phase announced and the sum of its advances.
    fn tally(&self, phase: Phase) -> (u64, u64) {
        let calls = self.0.lock().unwrap();
        let of = |kind| calls.iter().filter(|(p, k, _)| *p == phase && *k == kind).map(|(_, _, n)| n).sum();
        (of("start"), of("advance"))
    }
}

#[tokio::test]
async fn export_then_import_reproduces_every_cid_chain_object_and_name() {
    let server = NatsServer::start().await;
    let source = Store::open(&server, "source").await;
    let (cids, invoice, receipt) = history(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("all.car");
    let exported = export(source.stores(), &ExportSelection::default(), &car, &Silent).await.unwrap();
    assert_eq!((exported.events, exported.objects), (4, 3), "the invoice, its name's record, the receipt");
    assert_eq!(exported.manifest.names[0].name, "docs/invoice");
    assert!(exported.missing_objects.is_empty());
    let sections = blocks(&car).await;
    assert_eq!(sections[0].cid, exported.root, "the manifest comes first");
    assert_eq!(sections[1..5].iter().map(|b| b.cid).collect::<Vec<_>>(), cids, "events in stream order");
    assert_eq!(exported.bytes, std::fs::metadata(&car).unwrap().len());

    let target = Store::open(&server, "target").await;
    let progress = Recorder::default();
    let verified = verify(target.stores(), &car, &progress).await.unwrap();
    assert_eq!((verified.summary().events, verified.summary().events_present), (4, 0));
    assert_eq!(target.counts().await, (0, 0), "verifying writes nothing");
    let imported = verified.write(target.stores(), &progress).await.unwrap();
    assert_eq!((imported.events_written, imported.objects_written, imported.aggregates), (4, 3, 3));
    assert_eq!(imported.root, exported.root);
    assert_eq!(progress.tally(Phase::Verify), (exported.bytes, exported.bytes));
    assert_eq!(progress.tally(Phase::CheckChains), (4, 4));
    assert_eq!(progress.tally(Phase::ImportEvents), (4, 4));
    for aggregate in ["customer/c1", "order/o1", "payment/p1"] {
        assert_eq!(target.chain(aggregate).await, source.chain(aggregate).await, "{aggregate}");
    }
    assert_eq!(target.objects.get_bytes(&invoice).await.unwrap(), b"invoice 1\n");
    assert!(target.objects.stat(&receipt).await.unwrap().is_some());
    assert_eq!(imported.names, ["docs/invoice"]);
    assert_eq!(
        target.named.history("docs/invoice").await.unwrap(),
        source.named.history("docs/invoice").await.unwrap()
    );
    let shown = target.events.read_aggregate(&key("order/o1"), Default::default()).await.unwrap();
    assert_eq!(shown[1].event.envelope.parents(), [cids[2]]);

    // Importing again writes nothing.
    let again = import(target.stores(), &car, &Silent).await.unwrap();
    assert_eq!((again.events_written, again.events_present, again.objects_written), (0, 4, 0));
    assert_eq!(target.counts().await, (4, 3));

    // One aggregate comes with everything it descends from, and what it links.
    let some = dir.path().join("payment.car");
    let selection = ExportSelection { aggregates: vec![key("payment/p1")], ..ExportSelection::default() };
    let exported = export(source.stores(), &selection, &some, &Silent).await.unwrap();
    assert_eq!((exported.events, exported.objects), (3, 0), "payment/p1 v1, order/o1 v1, customer/c1 v1");
    assert_eq!(exported.manifest.selection.aggregates, Some(vec!["payment/p1".to_owned()]));
    let partial = Store::open(&server, "partial").await;
    let imported = import(partial.stores(), &some, &Silent).await.unwrap();
    assert_eq!(imported.events_written, 3);
    assert_eq!(partial.chain("order/o1").await, &cids[1..2]);
    // The rest of order/o1 then continues the chain already there.
    let imported = import(partial.stores(), &car, &Silent).await.unwrap();
    assert_eq!((imported.events_written, imported.events_present), (1, 3));
    assert_eq!(partial.chain("order/o1").await, source.chain("order/o1").await);
}

#[tokio::test]
async fn blocks_in_any_order_import_with_the_manifest_last() {
    let server = NatsServer::start().await;
    let source = Store::open(&server, "source").await;
    let (cids, _, _) = history(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("all.car");
    let exported = export(source.stores(), &ExportSelection::default(), &car, &Silent).await.unwrap();

    // The same blocks, reversed: objects, then events newest first, then the manifest.
    let bytes = std::fs::read(&car).unwrap();
    let (mut reader, roots) = CarReader::open(bytes.as_slice(), bytes.len() as u64).await.unwrap();
    let mut sections = Vec::new();
    while let Some(block) = reader.next_block().await.unwrap() {
        sections.push((block.cid, reader.read(&block).await.unwrap()));
    }
    let mut reversed = Vec::new();
    write_header(&mut reversed, &roots).await.unwrap();
    for (cid, data) in sections.iter().rev() {
        write_block(&mut reversed, cid, data).await.unwrap();
    }
    let reversed_path = dir.path().join("reversed.car");
    std::fs::write(&reversed_path, &reversed).unwrap();
    assert_eq!(blocks(&reversed_path).await.last().unwrap().cid, exported.root);
    assert!(blocks(&reversed_path).await.iter().take(3).any(|b| b.cid.codec() == RAW));

    let target = Store::open(&server, "target").await;
    let imported = import(target.stores(), &reversed_path, &Silent).await.unwrap();
    assert_eq!((imported.events_written, imported.objects_written), (4, 3));
    assert_eq!(target.chain("order/o1").await, [cids[1], cids[3]]);
    assert_eq!(target.named.head("docs/invoice").await.unwrap(), source.named.head("docs/invoice").await.unwrap());
}
