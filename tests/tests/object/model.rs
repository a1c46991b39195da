//! `Object` and `DynObject` on derived and built-in types side by side.

use k8s_openapi::api::apps::v1::Deployment;
use kube::core::GroupVersionKind;
use windlass::object::{DynObject, Object, Scope};

use crate::derive::specs::{Shape, Widget, WidgetSpec, WidgetStatus};

fn widget() -> Widget {
    let mut w = Widget::new(
        "w",
        WidgetSpec {
            size: 1,
            color: "red".into(),
        },
    );
    w.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    w.status = Some(WidgetStatus {
        ready: 1,
        selector: None,
    });
    w
}

#[test]
fn derived_types_report_their_gvk_plural_and_scope_like_built_in_types() {
    assert_eq!(
        Widget::type_gvk(),
        GroupVersionKind::gvk("example.com", "v1", "Widget")
    );
    assert_eq!(Widget::API_VERSION, "example.com/v1");
    assert_eq!(Widget::PLURAL, "widgets");
    assert_eq!(Widget::SCOPE, Scope::Namespaced);
    assert_eq!(Shape::SCOPE, Scope::Cluster);
    assert_eq!(Shape::PLURAL, "shapes");
    assert_eq!(Deployment::type_gvk().group, "apps");
    assert_eq!(widget().gvk(), Widget::type_gvk());
}

#[test]
fn derived_and_built_in_objects_share_one_collection_and_downcast_back() {
    let objects: Vec<Box<dyn DynObject>> =
        vec![Box::new(widget()), Box::new(Deployment::default())];
    let kinds: Vec<String> = objects.iter().map(|o| o.gvk().kind).collect();
    assert_eq!(kinds, ["Widget", "Deployment"]);
    assert_eq!(objects[0].meta().name.as_deref(), Some("w"));
    let copy = objects[0].deep_copy_object();
    assert_eq!(copy.downcast_ref::<Widget>().unwrap().spec, widget().spec);
    assert!(objects[1].downcast_ref::<Widget>().is_none());
}

#[test]
fn deep_copy_into_a_derived_type_leaves_no_aliasing_and_keeps_capacity() {
    let source = widget();
    let mut target = Widget::new(
        "old-name-with-a-long-buffer",
        WidgetSpec {
            size: 9,
            color: String::with_capacity(256),
        },
    );
    target.metadata.finalizers = Some(Vec::with_capacity(32));
    let name_buffer = target.metadata.name.as_ref().unwrap().as_ptr();
    let finalizers_buffer = target.metadata.finalizers.as_ref().unwrap().as_ptr();

    source.deep_copy_into(&mut target);

    assert_eq!(target.metadata, source.metadata);
    assert_eq!(target.spec, source.spec);
    assert_eq!(target.status, source.status);
    // The metadata's buffers are the target's own, reused, not the source's.
    assert_eq!(target.metadata.name.as_ref().unwrap().as_ptr(), name_buffer);
    let finalizers = target.metadata.finalizers.as_ref().unwrap();
    assert_eq!(finalizers.as_ptr(), finalizers_buffer);
    assert!(finalizers.capacity() >= 32);
    assert_ne!(
        finalizers.as_ptr(),
        source.metadata.finalizers.as_ref().unwrap().as_ptr()
    );

    target.metadata.finalizers.as_mut().unwrap()[0].push_str("-changed");
    target.spec.color.push_str("-changed");
    assert_eq!(
        source.metadata.finalizers.as_ref().unwrap()[0],
        "example.com/cleanup"
    );
    assert_eq!(source.spec.color, "red");
}

#[test]
fn a_derived_object_serializes_with_its_api_version_and_kind_and_reads_back() {
    let w = widget();
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(json["apiVersion"], "example.com/v1");
    assert_eq!(json["kind"], "Widget");
    assert_eq!(json["status"]["ready"], 1);
    let back: Widget = serde_json::from_value(json).unwrap();
    assert_eq!(back.spec, w.spec);
    assert_eq!(back.status, w.status);

    let without_status = serde_json::to_value(Widget::new("n", w.spec.clone())).unwrap();
    assert!(without_status.get("status").is_none());
    let err = serde_json::from_value::<Widget>(serde_json::json!({"metadata": {}})).unwrap_err();
    assert!(err.to_string().contains("missing field `spec`"), "{err}");
}
