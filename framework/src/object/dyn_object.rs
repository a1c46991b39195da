//! [`DynObject`]: objects of any kind behind one pointer type.

use std::any::Any;
use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::GroupVersionKind;

use super::Object;

/// The object-safe companion of [`Object`]: lets objects of different kinds live in one
/// collection as `Box<dyn DynObject>` (what a [`Scheme`](super::Scheme) decodes into), and be
/// downcast back to their type.
///
/// Every [`Object`] implements it. On a `dyn DynObject`, call the inherent methods
/// [`gvk`](#method.gvk), [`meta`](#method.meta), [`downcast_ref`](#method.downcast_ref) and the
/// others; the trait's own methods carry an `object_` prefix so that importing it next to
/// [`Object`] and `kube::Resource` never makes `pod.gvk()` or `pod.meta()` ambiguous.
///
/// # Example
///
/// ```
/// use k8s_openapi::api::core::v1::{ConfigMap, Secret};
/// use windlass::object::DynObject;
///
/// let objects: Vec<Box<dyn DynObject>> =
///     vec![Box::new(ConfigMap::default()), Box::new(Secret::default())];
/// let kinds: Vec<String> = objects.iter().map(|o| o.gvk().kind).collect();
/// assert_eq!(kinds, ["ConfigMap", "Secret"]);
/// assert!(objects[0].downcast_ref::<ConfigMap>().is_some());
/// assert!(objects[1].downcast_ref::<ConfigMap>().is_none());
/// ```
pub trait DynObject: Any + Debug + Send + Sync {
    /// The object's group, version and kind.
    fn object_gvk(&self) -> GroupVersionKind;

    /// The plural resource name its type is served under.
    fn object_plural(&self) -> &'static str;

    /// The object's metadata.
    fn object_meta(&self) -> &ObjectMeta;

    /// The object's metadata, to change.
    fn object_meta_mut(&mut self) -> &mut ObjectMeta;

    /// A deep copy of the object, boxed (see [`Object::deep_copy`]).
    fn deep_copy_object(&self) -> Box<dyn DynObject>;

    /// The object as JSON, with its `apiVersion` and `kind`.
    ///
    /// # Errors
    ///
    /// When the object's `Serialize` impl fails, which the derived and k8s-openapi impls don't.
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;

    /// The object as `&dyn Any`, for downcasting by hand; prefer `downcast_ref` on `dyn DynObject`.
    fn as_any(&self) -> &dyn Any;

    /// The object as `&mut dyn Any`; prefer `downcast_mut` on `dyn DynObject`.
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// The box as `Box<dyn Any>`; prefer `downcast` on `Box<dyn DynObject>`.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<K: Object> DynObject for K {
    fn object_gvk(&self) -> GroupVersionKind {
        K::type_gvk()
    }

    fn object_plural(&self) -> &'static str {
        K::PLURAL
    }

    fn object_meta(&self) -> &ObjectMeta {
        kube::Resource::meta(self)
    }

    fn object_meta_mut(&mut self) -> &mut ObjectMeta {
        kube::Resource::meta_mut(self)
    }

    fn deep_copy_object(&self) -> Box<dyn DynObject> {
        Box::new(self.deep_copy())
    }

    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl dyn DynObject {
    /// The object's group, version and kind.
    pub fn gvk(&self) -> GroupVersionKind {
        self.object_gvk()
    }

    /// The plural resource name its type is served under.
    pub fn plural(&self) -> &'static str {
        self.object_plural()
    }

    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        self.object_meta()
    }

    /// The object's metadata, to change.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.object_meta_mut()
    }

    /// Whether the object is a `K`.
    pub fn is<K: Object>(&self) -> bool {
        self.as_any().is::<K>()
    }

    /// The object as a `&K`, or `None` if it is another type.
    pub fn downcast_ref<K: Object>(&self) -> Option<&K> {
        self.as_any().downcast_ref()
    }

    /// The object as a `&mut K`, or `None` if it is another type.
    pub fn downcast_mut<K: Object>(&mut self) -> Option<&mut K> {
        self.as_any_mut().downcast_mut()
    }

    /// The object as a `Box<K>`.
    ///
    /// # Errors
    ///
    /// Gives the box back, unchanged, if the object is not a `K`.
    pub fn downcast<K: Object>(self: Box<Self>) -> Result<Box<K>, Box<dyn DynObject>> {
        if self.is::<K>() {
            Ok(self
                .into_any()
                .downcast()
                .unwrap_or_else(|_| unreachable!("is::<K>() was checked")))
        } else {
            Err(self)
        }
    }
}

impl Clone for Box<dyn DynObject> {
    fn clone(&self) -> Self {
        self.deep_copy_object()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};

    use super::*;
    use crate::object::Object;

    fn named<K: Object + Default>(name: &str) -> Box<dyn DynObject> {
        let mut object = K::default();
        kube::Resource::meta_mut(&mut object).name = Some(name.into());
        Box::new(object)
    }

    #[test]
    fn heterogeneous_objects_report_their_own_gvk_and_meta() {
        let objects = [named::<Pod>("p"), named::<Deployment>("d")];
        assert_eq!(objects[0].gvk(), GroupVersionKind::gvk("", "v1", "Pod"));
        assert_eq!(
            objects[1].gvk(),
            GroupVersionKind::gvk("apps", "v1", "Deployment")
        );
        assert_eq!(objects[1].plural(), "deployments");
        assert_eq!(objects[1].meta().name.as_deref(), Some("d"));
    }

    #[test]
    fn downcast_succeeds_for_the_right_type_and_gives_the_box_back_otherwise() {
        let object = named::<Pod>("p");
        assert!(object.is::<Pod>());
        let object = match object.downcast::<ConfigMap>() {
            Ok(_) => panic!("a Pod is not a ConfigMap"),
            Err(back) => back,
        };
        let pod = object.downcast::<Pod>().expect("a Pod");
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
    }

    #[test]
    fn deep_copy_object_is_independent_of_the_original() {
        let mut original = named::<ConfigMap>("a");
        let copy = original.clone();
        original.meta_mut().name = Some("b".into());
        original.downcast_mut::<ConfigMap>().unwrap().data = Some(Default::default());
        assert_eq!(copy.meta().name.as_deref(), Some("a"));
        assert!(copy.downcast_ref::<ConfigMap>().unwrap().data.is_none());
    }

    #[test]
    fn importing_dyn_object_next_to_object_and_resource_leaves_method_calls_unambiguous() {
        use kube::Resource;
        let pod = Pod::default();
        assert_eq!(pod.gvk(), Pod::type_gvk());
        assert!(pod.meta().name.is_none());
        assert_eq!(pod.object_gvk(), Pod::type_gvk());
    }

    #[test]
    fn to_json_carries_api_version_and_kind() {
        let json = named::<Deployment>("d").to_json().unwrap();
        assert_eq!(json["apiVersion"], "apps/v1");
        assert_eq!(json["kind"], "Deployment");
        assert_eq!(json["metadata"]["name"], "d");
    }
}
