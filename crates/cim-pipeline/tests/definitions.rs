//! Invalid definitions are refused with precise messages, and nothing is
//! deployed: no event, no consumer.

use cim_cid::AggregateKey;
use cim_pipeline_api::{DefinitionError, PipelineCode, PutPipeline, SourceFormat};
use cim_wire::RequestError;

use crate::support::Engines;

fn errors(result: Result<cim_pipeline_api::Put, RequestError<PipelineCode>>) -> Vec<DefinitionError> {
    let error = result.expect_err("refused");
    assert!(error.is(PipelineCode::InvalidDefinition), "{error}");
    let details = error.remote().expect("a refusal").details.clone();
    serde_json::from_value(details["errors"].clone()).expect("errors")
}

const VALID: &str = r#"
name = "ok"
[trigger]
aggregate_types = ["reading"]
[[stages]]
name = "t"
type = "transform"
jq = "{n: .payload.n}"
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "X"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn invalid_definitions_are_refused_precisely_and_nothing_is_deployed() {
    let engines = Engines::start(1, "").await;
    let client = engines.client();
    let put = |source: &str| {
        let request =
            PutPipeline { source: source.to_owned(), format: Some(SourceFormat::Toml), expected_version: None };
        let client = client.clone();
        async move { client.put(&request).await }
    };

    // An unknown stage type.
    let errors_ = errors(put(&VALID.replace("type = \"transform\"", "type = \"transmogrify\"")).await);
    assert_eq!(errors_.len(), 1, "{errors_:?}");
    assert!(errors_[0].message.contains("unknown variant `transmogrify`"), "{errors_:?}");
    assert!(errors_[0].path.starts_with("stages"), "{errors_:?}");

    // A jq program that does not compile: its position.
    let errors_ = errors(put(&VALID.replace("{n: .payload.n}", "{n: .payload.n,\\n  m: }")).await);
    assert_eq!(errors_[0].path, "stages[0].jq", "{errors_:?}");
    assert_eq!((errors_[0].line, errors_[0].column), (Some(2), Some(6)), "{errors_:?}");
    let errors_ = errors(put(&VALID.replace("{n: .payload.n}", ".payload | frobnicate")).await);
    assert!(errors_[0].message.contains("undefined filter `frobnicate`"), "{errors_:?}");
    assert_eq!((errors_[0].line, errors_[0].column), (Some(1), Some(12)), "{errors_:?}");

    // Triggers that match nothing.
    let errors_ = errors(
        put(&VALID.replace("aggregate_types = [\"reading\"]", "aggregate_types = [\"reading\"]\nevent_types = []"))
            .await,
    );
    assert!(errors_[0].message.starts_with("matches nothing"), "{errors_:?}");
    let errors_ = errors(
        put(&VALID.replace(
            "aggregate_types = [\"reading\"]",
            "aggregate_types = [\"reading\"]\nevent_types = [\"Has Space\"]",
        ))
        .await,
    );
    assert_eq!(errors_[0].path, "trigger.event_types[0]");
    assert!(errors_[0].message.contains("matches nothing"), "{errors_:?}");
    let errors_ =
        errors(put(&VALID.replace("aggregate_types = [\"reading\"]", "aggregate_types = [\"pipeline-run\"]")).await);
    assert!(errors_[0].message.contains("engine's own"), "{errors_:?}");

    // Several problems at once are all reported.
    let source = VALID
        .replace("name = \"ok\"", "name = \"Not OK\"")
        .replace("aggregate_type = \"derived\"", "aggregate_type = \"unit\"");
    let errors_ = errors(put(&source).await);
    let paths: Vec<&str> = errors_.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["name", "sinks[0].aggregate_type"], "{errors_:?}");
    assert!(errors_[1].message.contains("may not write aggregate type `unit`"), "{errors_:?}");

    // Not TOML: line and column.
    let errors_ = errors(put("name = \"x\"\n[trigger\n").await);
    assert_eq!(errors_[0].line, Some(2), "{errors_:?}");

    // A cycle: a's output triggers b, whose output triggers a.
    let a = VALID
        .replace("name = \"ok\"", "name = \"a\"")
        .replace("aggregate_types = [\"reading\"]", "aggregate_types = [\"derived\"]\nevent_types = [\"FromB\"]")
        .replace("event_type = \"X\"", "event_type = \"FromA\"");
    engines.put(&a).await;
    let b = VALID
        .replace("name = \"ok\"", "name = \"b\"")
        .replace("aggregate_types = [\"reading\"]", "aggregate_types = [\"derived\"]\nevent_types = [\"FromA\"]")
        .replace("event_type = \"X\"", "event_type = \"FromB\"");
    let errors_ = errors(put(&b).await);
    assert!(errors_[0].message.contains("a cycle between pipelines"), "{errors_:?}");
    assert!(errors_[0].message.contains("`b` writes derived/FromB, which `a`'s trigger matches"), "{errors_:?}");
    assert!(errors_[0].message.contains("`a` writes derived/FromA, which `b`'s trigger matches"), "{errors_:?}");
    // A pipeline triggering itself.
    let selfish = VALID
        .replace("name = \"ok\"", "name = \"selfish\"")
        .replace("aggregate_types = [\"reading\"]", "aggregate_types = [\"derived\"]");
    let errors_ = errors(put(&selfish).await);
    assert!(
        errors_[0].message.contains("`selfish` writes derived/X, which `selfish`'s trigger matches"),
        "{errors_:?}"
    );

    // Nothing of the refused ones was deployed: no events, no consumers.
    let list = client.list().await.expect("list");
    let names: Vec<&str> = list.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a"]);
    for name in ["ok", "b", "selfish"] {
        let key = AggregateKey::new("pipeline", name).expect("key");
        assert_eq!(engines.store.head(&key).await.expect("head"), None, "{name} has events");
    }
    let js = async_nats::jetstream::new(engines.client.clone());
    let mut stream = js.get_stream("CIM_EVENTS").await.expect("stream");
    let messages = stream.info().await.expect("info").state.messages;
    let mut names = stream.consumer_names();
    let mut consumers = Vec::new();
    use futures::StreamExt;
    while let Some(name) = names.next().await {
        consumers.push(name.expect("name"));
    }
    assert!(
        consumers.iter().all(|c| !c.starts_with("pipeline-b")
            && !c.starts_with("pipeline-ok")
            && !c.starts_with("pipeline-selfish")),
        "{consumers:?} ({messages} messages)"
    );
    // The valid one is accepted as given.
    let ok = engines.put(VALID).await;
    assert_eq!((ok.version, ok.unchanged), (1, false));
    assert!(engines.put(VALID).await.unchanged);
}
