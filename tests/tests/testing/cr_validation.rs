//! Custom resources against their CRD's schema: pruning, defaulting, every schema feature's
//! validation with the apiserver's messages, CEL rules (transition rules included), the
//! `fieldValidation` directive, and CRDs refused at registration.

use http::Method;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use windlass::testing::ApiServer;

use super::support::*;

const GIZMOS: &str = "/apis/example.com/v1/namespaces/default/gizmos";

fn gizmo_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.metadata.name.startsWith('g')", "message": "gizmo names start with g"}
                    ],
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size", "mode"],
                            "x-kubernetes-validations": [
                                {"rule": "self.size <= 5 || self.mode == 'slow'", "message": "big gizmos must be slow"},
                                {"rule": "!has(self.name) || self.name != 'admin'",
                                 "messageExpression": "'name ' + self.name + ' is reserved'",
                                 "reason": "FieldValueForbidden", "fieldPath": ".name"}
                            ],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1, "maximum": 10,
                                         "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "size may not shrink"}]},
                                "mode": {"type": "string", "enum": ["fast", "slow"]},
                                "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
                                "email": {"type": "string", "format": "email"},
                                "when": {"type": "string", "format": "date"},
                                "ratio": {"type": "number", "maximum": 1, "exclusiveMaximum": true},
                                "port": {"x-kubernetes-int-or-string": true},
                                "tags": {"type": "array", "minItems": 1, "maxItems": 3,
                                         "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "entries": {"type": "array", "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["key"],
                                            "items": {"type": "object", "required": ["key"],
                                                      "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}},
                                "replicas": {"type": "integer", "default": 1},
                                "note": {"type": "string", "nullable": true},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "labels": {"type": "object", "maxProperties": 2,
                                           "additionalProperties": {"type": "string"}}
                            }
                        },
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                    }
                }}
            }]
        }
    }))
    .expect("a valid CRD")
}

fn gizmo_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gizmo"),
        "gizmos",
    )
}

async fn gizmos(client: &kube::Client) -> Api<DynamicObject> {
    install(client, &gizmo_crd()).await;
    Api::namespaced_with(client.clone(), "default", &gizmo_resource())
}

fn gizmo(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": name}, "spec": spec})
}

fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a dynamic object")
}

#[tokio::test]
async fn a_custom_resource_is_pruned_and_defaulted_and_unknown_fields_are_warned_about() {
    let server = ApiServer::new();
    let client = server.client();
    gizmos(&client).await;
    let body = gizmo(
        "g1",
        json!({"size": 2, "mode": "fast", "bogus": true, "extra": {"free": {"form": 1}}, "note": null}),
    );
    let res = request(&client, Method::POST, GIZMOS, Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.header("warning"),
        Some(r#"299 - "unknown field \"spec.bogus\"""#)
    );
    let spec = &res.json()["spec"];
    assert!(spec.get("bogus").is_none(), "{spec}");
    assert_eq!(spec["replicas"], 1, "defaulted");
    assert_eq!(spec["extra"], json!({"free": {"form": 1}}), "preserved");
    assert_eq!(spec["note"], Value::Null, "nullable keeps its null");
}

#[tokio::test]
async fn each_invalid_value_names_its_field_with_the_apiservers_message() {
    let server = ApiServer::new();
    let client = server.client();
    gizmos(&client).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"size": 11}),
            "spec.size",
            "Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (
            json!({"size": 0}),
            "spec.size",
            "Invalid value: 0: spec.size in body should be greater than or equal to 1",
        ),
        (
            json!({"size": "two"}),
            "spec.size",
            r#"Invalid value: "string": spec.size in body must be of type integer: "string""#,
        ),
        (
            json!({"mode": "warp"}),
            "spec.mode",
            r#"Unsupported value: "warp": supported values: "fast", "slow""#,
        ),
        (
            json!({"name": "toolongname"}),
            "spec.name",
            "Too long: may not be more than 8 bytes",
        ),
        (
            json!({"name": "a"}),
            "spec.name",
            r#"Invalid value: "a": spec.name in body should be at least 2 chars long"#,
        ),
        (
            json!({"name": "Abc"}),
            "spec.name",
            r#"Invalid value: "Abc": spec.name in body should match '^[a-z]+$'"#,
        ),
        (
            json!({"email": "nobody"}),
            "spec.email",
            r#"Invalid value: "nobody": spec.email in body must be of type email: "nobody""#,
        ),
        (
            json!({"when": "someday"}),
            "spec.when",
            r#"Invalid value: "someday": spec.when in body must be of type date: "someday""#,
        ),
        (
            json!({"ratio": 1}),
            "spec.ratio",
            "Invalid value: 1: spec.ratio in body should be less than 1",
        ),
        (
            json!({"port": true}),
            "spec.port",
            r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
        ),
        (
            json!({"tags": []}),
            "spec.tags",
            "Invalid value: 0: spec.tags in body should have at least 1 items",
        ),
        (
            json!({"tags": ["a", "b", "c", "d"]}),
            "spec.tags",
            "Too many: 4: must have at most 3 items",
        ),
        (
            json!({"tags": ["a", "a"]}),
            "spec.tags[1]",
            r#"Duplicate value: "a""#,
        ),
        (
            json!({"entries": [{"key": "k"}, {"key": "k"}]}),
            "spec.entries[1]",
            r#"Duplicate value: {"key":"k"}"#,
        ),
        (
            json!({"entries": [{"value": "v"}]}),
            "spec.entries[0].key",
            "Required value",
        ),
        (
            json!({"labels": {"a": "1", "b": "2", "c": "3"}}),
            "spec.labels",
            "Too many: 3: must have at most 2 items",
        ),
        (
            json!({"labels": {"a": 1}}),
            "spec.labels.a",
            r#"Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#,
        ),
        (
            json!({"mode": null}),
            "spec.mode",
            r#"Invalid value: "null": spec.mode in body must be of type string: "null""#,
        ),
    ];
    for (i, (overrides, field, message)) in cases.into_iter().enumerate() {
        let mut spec = json!({"size": 2, "mode": "slow"});
        for (k, v) in overrides.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let name = format!("g{i}");
        let res = request(&client, Method::POST, GIZMOS, Some(gizmo(&name, spec))).await;
        let status = res.assert_status(422, "Invalid");
        let causes = status["details"]["causes"].as_array().unwrap();
        assert_eq!(causes[0]["field"], field, "case {i}: {status}");
        assert_eq!(causes[0]["message"], message, "case {i}: {status}");
        // Blocking errors come with a note that the CEL rules were not checked.
        let text = status["message"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("Gizmo.example.com \"{name}\" is invalid: "))
                && text.contains(&format!("{field}: {message}")),
            "case {i}: {status}"
        );
        assert_eq!(status["details"]["kind"], "Gizmo");
        assert_eq!(status["details"]["group"], "example.com");
    }
}

#[tokio::test]
async fn several_violations_are_one_cause_each() {
    let server = ApiServer::new();
    let client = server.client();
    gizmos(&client).await;
    let res = request(
        &client,
        Method::POST,
        GIZMOS,
        Some(gizmo("g", json!({"size": 50, "mode": "warp"}))),
    )
    .await;
    let status = res.assert_status(422, "Invalid");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.size") && fields.contains(&"spec.mode"),
        "{status}"
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("is invalid: ["),
        "{status}"
    );
}

#[tokio::test]
async fn a_missing_required_field_is_reported_and_cel_rules_wait_for_a_valid_object() {
    let server = ApiServer::new();
    let client = server.client();
    gizmos(&client).await;
    let res = request(
        &client,
        Method::POST,
        GIZMOS,
        Some(gizmo("g", json!({"size": 9}))),
    )
    .await;
    let status = res.assert_status(422, "Invalid");
    let causes = status["details"]["causes"].as_array().unwrap();
    assert_eq!(
        causes[0],
        json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.mode"})
    );
    assert_eq!(
        causes[1]["message"],
        r#"Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#
    );
    assert_eq!(causes[1]["field"], "<nil>");
}

#[tokio::test]
async fn cel_rules_report_their_message_field_path_and_reason() {
    let server = ApiServer::new();
    let client = server.client();
    gizmos(&client).await;
    let res = request(
        &client,
        Method::POST,
        GIZMOS,
        Some(gizmo("g", json!({"size": 9, "mode": "fast"}))),
    )
    .await;
    let status = res.assert_status(422, "Invalid");
    assert_eq!(
        status["message"],
        r#"Gizmo.example.com "g" is invalid: spec: Invalid value: "object": big gizmos must be slow"#
    );
    let res = request(
        &client,
        Method::POST,
        GIZMOS,
        Some(gizmo(
            "g",
            json!({"size": 1, "mode": "fast", "name": "admin"}),
        )),
    )
    .await;
    let status = res.assert_status(422, "Invalid");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "FieldValueForbidden", "message": "Forbidden: name admin is reserved", "field": "spec.name"})
    );
    let res = request(
        &client,
        Method::POST,
        GIZMOS,
        Some(gizmo("h", json!({"size": 1, "mode": "fast"}))),
    )
    .await;
    let status = res.assert_status(422, "Invalid");
    assert_eq!(
        status["message"],
        r#"Gizmo.example.com "h" is invalid: <nil>: Invalid value: "object": gizmo names start with g"#
    );
}

#[tokio::test]
async fn transition_rules_compare_with_the_stored_object_on_update_patch_and_apply() {
    let server = ApiServer::new();
    let client = server.client();
    let api = gizmos(&client).await;
    api.create(
        &PostParams::default(),
        &dynamic(gizmo("g", json!({"size": 3, "mode": "fast"}))),
    )
    .await
    .expect("a create is not a transition");
    let shrink = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await;
    let status = api_err(shrink);
    assert_eq!(
        status.message,
        r#"Gizmo.example.com "g" is invalid: spec.size: Invalid value: "integer": size may not shrink"#
    );
    let mut current = api.get("g").await.unwrap();
    current.data["spec"]["size"] = json!(1);
    api_err(api.replace("g", &PostParams::default(), &current).await);
    let applied = api
        .patch(
            "g",
            &PatchParams::apply("ops").force(),
            &Patch::Apply(gizmo("g", json!({"size": 1, "mode": "fast"}))),
        )
        .await;
    assert_eq!(api_err(applied).code, 422);
    api.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 4}})),
    )
    .await
    .expect("growing is allowed");
}

#[tokio::test]
async fn field_validation_strict_refuses_unknown_fields_and_ignore_says_nothing() {
    let server = ApiServer::new();
    let client = server.client();
    gizmos(&client).await;
    let body = gizmo(
        "g",
        json!({"size": 1, "mode": "fast", "bogus": 1, "worse": 2}),
    );
    let res = request(
        &client,
        Method::POST,
        &format!("{GIZMOS}?fieldValidation=Strict"),
        Some(body.clone()),
    )
    .await;
    let status = res.assert_status(400, "BadRequest");
    assert_eq!(
        status["message"],
        r#"Gizmo in version "v1" cannot be handled as a Gizmo: strict decoding error: unknown field "spec.bogus", unknown field "spec.worse""#
    );
    let res = request(
        &client,
        Method::POST,
        &format!("{GIZMOS}?fieldValidation=Ignore"),
        Some(body),
    )
    .await;
    assert_eq!(res.status, 201);
    assert!(res.header("warning").is_none());
}

#[tokio::test]
async fn built_ins_report_unknown_fields_too() {
    let server = ApiServer::new();
    let client = server.client();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}, "bogus": 1});
    let res = request(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some(cm.clone()),
    )
    .await;
    assert_eq!(res.status, 201);
    assert_eq!(
        res.header("warning"),
        Some(r#"299 - "unknown field \"bogus\"""#)
    );
    let res = request(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        Some(cm),
    )
    .await;
    let status = res.assert_status(400, "BadRequest");
    assert_eq!(
        status["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus""#
    );
}

async fn refused(crd: Value) -> Value {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(crd),
    )
    .await;
    res.assert_status(422, "Invalid")
}

fn crd_with_schema(schema: Value) -> Value {
    let mut crd = serde_json::to_value(gizmo_crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = schema;
    crd
}

#[tokio::test]
async fn a_crd_whose_schema_is_not_structural_is_422() {
    let status = refused(crd_with_schema(json!({
        "type": "object",
        "properties": {"spec": {"properties": {"size": {"type": "integer"}}}}
    })))
    .await;
    assert_eq!(
        status["message"],
        r#"CustomResourceDefinition.apiextensions.k8s.io "gizmos.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"#
    );
}

#[tokio::test]
async fn a_crd_whose_cel_rule_does_not_compile_is_422() {
    let status = refused(crd_with_schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.size >"}]}}
    })))
    .await;
    let cause = &status["details"]["causes"][0];
    assert_eq!(
        cause["field"],
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    );
    assert!(
        cause["message"]
            .as_str()
            .unwrap()
            .contains("compilation failed: ERROR: <input>"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_crd_calling_a_kubernetes_library_function_windlass_lacks_is_refused_clearly() {
    let status = refused(crd_with_schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"url": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "isURL(self.url)"}]}}
    })))
    .await;
    let message = status["details"]["causes"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("undeclared reference to 'isURL'"),
        "{message}"
    );
}

#[tokio::test]
async fn a_crd_with_a_pattern_that_is_not_a_regular_expression_is_422() {
    let status = refused(crd_with_schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"name": {"type": "string", "pattern": "[a-"}}}}
    })))
    .await;
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[name].pattern"
    );
}

#[tokio::test]
async fn the_derived_widget_crds_rules_are_enforced() {
    let server = ApiServer::new();
    let client = server.client();
    let yaml = include_str!("../../golden/widget.yaml");
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(yaml.trim_start_matches("---\n")).expect("the golden CRD parses");
    install(&client, &crd).await;
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &widget_resource("v1"));
    let green = dynamic(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3, "color": "green"}}));
    let status = api_err(widgets.create(&PostParams::default(), &green).await);
    assert_eq!(
        status.message,
        r#"Widget.example.com "w" is invalid: spec.color: Invalid value: "string": failed rule: self != 'green'"#
    );
    let big = dynamic(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 300, "color": "red"}}));
    let status = api_err(widgets.create(&PostParams::default(), &big).await);
    assert_eq!(
        status.message,
        r#"Widget.example.com "w" is invalid: spec.size: Invalid value: "integer": at most 100 widgets"#
    );
    let ok = dynamic(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3, "color": "red"}}));
    widgets
        .create(&PostParams::default(), &ok)
        .await
        .expect("a valid widget");
}
