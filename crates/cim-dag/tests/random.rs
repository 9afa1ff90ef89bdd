//! Properties over randomised (but seeded, so reproducible) builds, checked
//! against a naive model computed from the events themselves.

use std::collections::{HashMap, HashSet, VecDeque};

use cim_cid::{AggregateKey, Cid, Event};
use cim_dag::MerkleDag;

use crate::support::{Chains, SplitMix, TestResult, key};

/// `count` events over `aggregates` aggregates; each links up to three
/// random earlier events as parents.
fn random_events(seed: u64, count: usize, aggregates: usize) -> Vec<Event> {
    let mut rng = SplitMix::new(seed);
    let keys: Vec<AggregateKey> = (0..aggregates).map(|i| key(&format!("thing/{i}"))).collect();
    let mut chains = Chains::default();
    let mut events: Vec<Event> = Vec::with_capacity(count);
    for _ in 0..count {
        let aggregate = &keys[rng.below(keys.len())];
        let mut parents = Vec::new();
        if !events.is_empty() {
            for _ in 0..rng.below(4) {
                let parent = events[rng.below(events.len())].cid;
                if !parents.contains(&parent) {
                    parents.push(parent);
                }
            }
        }
        events.push(chains.next(aggregate, &parents));
    }
    events
}

/// Each event's links (`prev` and parents) as its envelope states them.
fn links(event: &Event) -> impl Iterator<Item = Cid> + '_ {
    event.envelope.prev().into_iter().chain(event.envelope.parents()).copied()
}

/// Shuffles with Fisher–Yates.
fn shuffle<T>(rng: &mut SplitMix, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

#[test]
fn topological_order_puts_every_event_after_its_links() -> TestResult {
    for seed in 1..=5 {
        let events = random_events(seed, 1500, 40);
        let dag = MerkleDag::from_events(events.iter().zip(0..))?;
        let order: HashMap<Cid, usize> = dag.topological_order().enumerate().map(|(i, e)| (e.cid, i)).collect();
        assert_eq!(order.len(), events.len(), "every event exactly once");
        for event in &events {
            for link in links(event) {
                assert!(
                    order[&link] < order[&event.cid],
                    "seed {seed}: {} is ordered before its link {link}",
                    event.cid
                );
            }
        }
    }
    Ok(())
}

#[test]
fn topological_order_of_a_dag_built_from_a_shuffled_valid_order() -> TestResult {
    // Any valid append order, not only the one the events were made in: take
    // a random topological order of the same events (Kahn's algorithm with a
    // random choice among the ready events) and build from that.
    let events = random_events(42, 800, 10);
    let by_cid: HashMap<Cid, &Event> = events.iter().map(|e| (e.cid, e)).collect();
    let mut waiting: HashMap<Cid, usize> =
        events.iter().map(|e| (e.cid, links(e).collect::<HashSet<_>>().len())).collect();
    let mut children: HashMap<Cid, Vec<Cid>> = HashMap::new();
    for event in &events {
        for link in links(event).collect::<HashSet<_>>() {
            children.entry(link).or_default().push(event.cid);
        }
    }
    let mut rng = SplitMix::new(7);
    let mut ready: Vec<Cid> = events.iter().filter(|e| waiting[&e.cid] == 0).map(|e| e.cid).collect();
    let mut append_order = Vec::new();
    while !ready.is_empty() {
        shuffle(&mut rng, &mut ready);
        let next = ready.pop().ok_or("ready is not empty")?;
        append_order.push(by_cid[&next]);
        for child in children.get(&next).into_iter().flatten() {
            let count = waiting.get_mut(child).ok_or("every child is an event")?;
            *count -= 1;
            if *count == 0 {
                ready.push(*child);
            }
        }
    }
    assert_eq!(append_order.len(), events.len());
    let dag = MerkleDag::from_events(append_order.iter().copied().zip(0..))?;
    let built: Vec<Cid> = dag.topological_order().map(|e| e.cid).collect();
    let appended: Vec<Cid> = append_order.iter().map(|e| e.cid).collect();
    assert_eq!(built, appended);
    let position: HashMap<Cid, usize> = built.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    for event in &events {
        assert!(links(event).all(|link| position[&link] < position[&event.cid]));
    }
    Ok(())
}

/// Naive model: ancestors by BFS over the events' own links.
fn naive_ancestors(by_cid: &HashMap<Cid, &Event>, start: Cid) -> HashMap<Cid, usize> {
    let mut depth = HashMap::new();
    let mut queue = VecDeque::from([(start, 0)]);
    while let Some((cid, d)) = queue.pop_front() {
        for link in links(by_cid[&cid]) {
            if link != start && !depth.contains_key(&link) {
                depth.insert(link, d + 1);
                queue.push_back((link, d + 1));
            }
        }
    }
    depth
}

#[test]
fn walks_paths_and_heads_agree_with_a_naive_model() -> TestResult {
    let events = random_events(2024, 600, 12);
    let dag = MerkleDag::from_events(events.iter().zip(0..))?;
    let by_cid: HashMap<Cid, &Event> = events.iter().map(|e| (e.cid, e)).collect();
    let mut rng = SplitMix::new(99);

    let linked: HashSet<Cid> = events.iter().flat_map(links).collect();
    let naive_heads: Vec<Cid> = events.iter().map(|e| e.cid).filter(|c| !linked.contains(c)).collect();
    assert_eq!(dag.heads().map(|e| e.cid).collect::<Vec<_>>(), naive_heads);

    for _ in 0..60 {
        let target = events[rng.below(events.len())].cid;
        let expected = naive_ancestors(&by_cid, target);

        let walked: Vec<Cid> = dag.ancestors(&target, None)?.map(|e| e.cid).collect();
        assert_eq!(walked.len(), expected.len(), "ancestors of {target} yielded twice or missed");
        assert_eq!(walked.iter().copied().collect::<HashSet<_>>(), expected.keys().copied().collect());
        assert!(walked.windows(2).all(|w| expected[&w[0]] <= expected[&w[1]]), "ancestors not nearest first");
        let bounded: HashSet<Cid> = dag.ancestors(&target, Some(2))?.map(|e| e.cid).collect();
        assert_eq!(bounded, expected.iter().filter(|(_, d)| **d <= 2).map(|(c, _)| *c).collect());

        for (ancestor, distance) in &expected {
            assert!(dag.descendants(ancestor, None)?.any(|e| e.cid == target));
            let path = dag.causal_path(ancestor, &target)?.ok_or("an ancestor has a path")?;
            assert_eq!(path.len(), distance + 1, "not a shortest path");
            assert_eq!((path[0], path[path.len() - 1]), (*ancestor, target));
            assert!(path.windows(2).all(|w| links(by_cid[&w[1]]).any(|l| l == w[0])), "path steps must be links");
        }
        let unrelated = events[rng.below(events.len())].cid;
        if unrelated != target && !expected.contains_key(&unrelated) {
            assert_eq!(dag.causal_path(&unrelated, &target)?, None);
        }
    }

    for aggregate in dag.aggregates().map(|e| e.aggregate.clone()).collect::<Vec<_>>() {
        let naive: Vec<Cid> = events.iter().filter(|e| e.envelope.aggregate() == aggregate).map(|e| e.cid).collect();
        let walked: Vec<Cid> = dag.events_of(&aggregate).iter().map(|e| e.cid).collect();
        assert_eq!(walked, naive, "events of {aggregate}");
    }
    Ok(())
}
