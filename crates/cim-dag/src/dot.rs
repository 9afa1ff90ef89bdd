//! Graphviz DOT rendering of part of the DAG, so people can look at it.

use std::borrow::Borrow;
use std::fmt::Write as _;

use cim_cid::Cid;
use daggy::NodeIndex;
use daggy::petgraph::Incoming;
use daggy::petgraph::visit::EdgeRef;

use crate::dag::MerkleDag;
use crate::node::EdgeKind;

/// How many trailing characters of a CID the short form keeps. Every event
/// CID starts with the same `bafyrei` prefix, so the tail is what differs.
const SHORT_CID_LEN: usize = 8;

impl MerkleDag {
    /// Renders the given events, and the links among them, as a Graphviz DOT
    /// digraph (`dot -Tsvg`).
    ///
    /// Each event is a box labelled with its aggregate, `v<version>` and a
    /// short CID (`…` and the CID's last 8 characters; the full CID is the
    /// node's id and tooltip). Links point from the older event to the newer
    /// one, left to right: `prev` links solid, parent links dashed. Links to
    /// events outside the selection are left out, and so are CIDs not in the
    /// DAG. The output is deterministic: events in insertion order.
    ///
    /// Combine with the walks to show the DAG around an event, e.g. an event
    /// with its ancestors and descendants up to a depth.
    pub fn to_dot<I>(&self, events: I) -> String
    where
        I: IntoIterator,
        I::Item: Borrow<Cid>,
    {
        let mut nodes: Vec<NodeIndex<u32>> = events.into_iter().filter_map(|cid| self.node_of(cid.borrow())).collect();
        nodes.sort_unstable();
        nodes.dedup();

        let mut dot = String::from("digraph cim {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        for &node in &nodes {
            let event = self.event_ref(node);
            let cid = event.cid.to_string();
            let label =
                format!("{}\\nv{}\\n{}", escape(&event.aggregate.to_string()), event.version, escape(&short_cid(&cid)));
            let _ = writeln!(dot, "  \"{id}\" [label=\"{label}\", tooltip=\"{id}\"];", id = escape(&cid));
        }
        for &node in &nodes {
            let mut links: Vec<(NodeIndex<u32>, EdgeKind)> = self
                .dag
                .graph()
                .edges_directed(node, Incoming)
                .filter(|edge| nodes.binary_search(&edge.source()).is_ok())
                .map(|edge| (edge.source(), *edge.weight()))
                .collect();
            links.sort_unstable();
            let to = escape(&self.node(node).cid().to_string());
            for (older, kind) in links {
                let from = escape(&self.node(older).cid().to_string());
                let style = match kind {
                    EdgeKind::Prev => "",
                    EdgeKind::Parent => " [style=dashed]",
                };
                let _ = writeln!(dot, "  \"{from}\" -> \"{to}\"{style};");
            }
        }
        dot.push_str("}\n");
        dot
    }
}

/// `…` and the last [`SHORT_CID_LEN`] characters of a CID's string form.
fn short_cid(cid: &str) -> String {
    let tail = cid.char_indices().rev().nth(SHORT_CID_LEN - 1).map_or(cid, |(at, _)| &cid[at..]);
    format!("…{tail}")
}

/// Escapes text for the inside of a DOT double-quoted string: backslashes
/// and quotes are escaped, line breaks become `\n`, other control
/// characters become U+FFFD.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' | '\r' => escaped.push_str("\\n"),
            c if c.is_control() => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_line_breaks() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("one\ntwo\r"), r"one\ntwo\n");
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(escape("order/42"), "order/42");
        // A trailing backslash must not escape the closing quote.
        assert_eq!(format!("\"{}\"", escape("x\\")), r#""x\\""#);
    }

    #[test]
    fn short_cid_keeps_the_tail() {
        assert_eq!(short_cid("bafyreiabcdefghijkl"), "…efghijkl");
        assert_eq!(short_cid("abc"), "…abc");
    }
}
