//! Defaulting of built-in kinds, as the apiserver's `SetDefaults_*` functions and create
//! strategies do it: a controller that compares what it wants with what the server stored must
//! meet the same filled-in fields here as on a cluster, or its tests pass where production loops.
//!
//! Only the defaults of fields operators commonly write are covered; admission plugins (service
//! account token volumes, default tolerations, priority) are not emulated.

use serde_json::{Map, Value, json};

/// Sets `obj[path]` to `value` when it is absent or null, creating parent objects on the way.
fn default_at(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        if !cur.is_object() {
            return;
        }
        let entry = cur.as_object_mut().map(|m| {
            let e = m
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if e.is_null() {
                *e = Value::Object(Map::new());
            }
            e
        });
        match entry {
            Some(e) => cur = e,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        let slot = m.entry(last.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

fn get_mut<'a>(obj: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for p in path {
        cur = cur.get_mut(*p)?;
    }
    Some(cur)
}

fn for_each_in(obj: &mut Value, path: &[&str], mut f: impl FnMut(&mut Value)) {
    if let Some(Value::Array(items)) = get_mut(obj, path) {
        for item in items {
            f(item);
        }
    }
}

/// `SetDefaults_Container` and the port defaults, for containers and init containers.
fn container(c: &mut Value) {
    default_at(
        c,
        &["terminationMessagePath"],
        json!("/dev/termination-log"),
    );
    default_at(c, &["terminationMessagePolicy"], json!("File"));
    default_at(c, &["resources"], json!({}));
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    // The tag is after the last ':' that follows the last '/', and digests pin an image too.
    let last = image.rsplit('/').next().unwrap_or_default();
    let tag = last.split_once(':').map(|(_, t)| t);
    let policy = if image.contains('@') || tag.is_some_and(|t| t != "latest") {
        "IfNotPresent"
    } else {
        "Always"
    };
    default_at(c, &["imagePullPolicy"], json!(policy));
    for_each_in(c, &["ports"], |p| {
        default_at(p, &["protocol"], json!("TCP"))
    });
}

/// `SetDefaults_PodSpec` and friends.
pub(crate) fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_at(spec, &["restartPolicy"], json!("Always"));
    default_at(spec, &["terminationGracePeriodSeconds"], json!(30));
    default_at(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default_at(spec, &["securityContext"], json!({}));
    default_at(spec, &["schedulerName"], json!("default-scheduler"));
    default_at(spec, &["enableServiceLinks"], json!(true));
    for_each_in(spec, &["containers"], container);
    for_each_in(spec, &["initContainers"], container);
}

fn template(obj: &mut Value, path: &[&str]) {
    if let Some(spec) = get_mut(obj, path) {
        pod_spec(spec);
    }
}

pub(crate) fn namespace(obj: &mut Value) {
    // Since Kubernetes 1.21 every namespace carries its own name as an immutable label.
    if let Some(name) = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(String::from)
    {
        default_at(obj, &["metadata", "labels"], json!({}));
        if let Some(labels) = obj
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    default_at(obj, &["spec", "finalizers"], json!(["kubernetes"]));
    default_at(obj, &["status", "phase"], json!("Active"));
}

pub(crate) fn secret(obj: &mut Value) {
    default_at(obj, &["type"], json!("Opaque"));
}

pub(crate) fn service(obj: &mut Value) {
    default_at(obj, &["spec", "type"], json!("ClusterIP"));
    default_at(obj, &["spec", "sessionAffinity"], json!("None"));
    default_at(obj, &["spec", "internalTrafficPolicy"], json!("Cluster"));
    for_each_in(obj, &["spec", "ports"], |p| {
        default_at(p, &["protocol"], json!("TCP"));
        if let Some(port) = p.get("port").cloned() {
            default_at(p, &["targetPort"], port);
        }
    });
    let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    if obj.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName") {
        default_at(obj, &["spec", "ipFamilies"], json!(["IPv4"]));
        default_at(obj, &["spec", "ipFamilyPolicy"], json!("SingleStack"));
        if !headless {
            let ip = format!("10.96.{}.{}", fastrand::u8(0..=255), fastrand::u8(1..=254));
            default_at(obj, &["spec", "clusterIP"], json!(ip));
        }
        if let Some(ip) = obj.pointer("/spec/clusterIP").cloned() {
            default_at(obj, &["spec", "clusterIPs"], json!([ip]));
        }
    }
    default_at(obj, &["status", "loadBalancer"], json!({}));
}

pub(crate) fn pod(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        pod_spec(spec);
    }
    default_at(obj, &["status", "phase"], json!("Pending"));
    let qos = qos_class(obj);
    default_at(obj, &["status", "qosClass"], json!(qos));
}

/// The QoS class the apiserver computes for a pod from its containers' resources.
fn qos_class(pod: &Value) -> &'static str {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    let Some(containers) = containers else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

pub(crate) fn deployment(obj: &mut Value) {
    default_at(obj, &["spec", "replicas"], json!(1));
    default_at(obj, &["spec", "revisionHistoryLimit"], json!(10));
    default_at(obj, &["spec", "progressDeadlineSeconds"], json!(600));
    default_at(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
    if obj.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("RollingUpdate") {
        default_at(
            obj,
            &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
            json!("25%"),
        );
        default_at(
            obj,
            &["spec", "strategy", "rollingUpdate", "maxSurge"],
            json!("25%"),
        );
    }
    template(obj, &["spec", "template", "spec"]);
}

pub(crate) fn replica_set(obj: &mut Value) {
    default_at(obj, &["spec", "replicas"], json!(1));
    template(obj, &["spec", "template", "spec"]);
}

pub(crate) fn stateful_set(obj: &mut Value) {
    default_at(obj, &["spec", "replicas"], json!(1));
    default_at(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
    default_at(obj, &["spec", "revisionHistoryLimit"], json!(10));
    default_at(
        obj,
        &["spec", "updateStrategy", "type"],
        json!("RollingUpdate"),
    );
    if obj
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("RollingUpdate")
    {
        default_at(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
            json!(0),
        );
    }
    default_at(
        obj,
        &["spec", "persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    template(obj, &["spec", "template", "spec"]);
}

pub(crate) fn daemon_set(obj: &mut Value) {
    default_at(obj, &["spec", "revisionHistoryLimit"], json!(10));
    default_at(
        obj,
        &["spec", "updateStrategy", "type"],
        json!("RollingUpdate"),
    );
    if obj
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("RollingUpdate")
    {
        default_at(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
            json!(1),
        );
        default_at(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
            json!(0),
        );
    }
    template(obj, &["spec", "template", "spec"]);
}

fn job_spec(spec: &mut Value) {
    default_at(spec, &["parallelism"], json!(1));
    default_at(spec, &["completions"], json!(1));
    default_at(spec, &["backoffLimit"], json!(6));
    default_at(spec, &["completionMode"], json!("NonIndexed"));
    default_at(spec, &["suspend"], json!(false));
    default_at(
        spec,
        &["podReplacementPolicy"],
        json!("TerminatingOrFailed"),
    );
    if let Some(pod) = spec.pointer_mut("/template/spec") {
        pod_spec(pod);
    }
}

pub(crate) fn job(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        job_spec(spec);
    }
    // The job strategy gives every Job a selector on its own uid and labels its pod template to
    // match, unless the author asked to manage the selector.
    let manual = obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(String::from);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(String::from);
    if let (false, Some(uid), Some(name)) = (manual, uid, name) {
        default_at(
            obj,
            &["spec", "selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        default_at(obj, &["spec", "template", "metadata", "labels"], json!({}));
        if let Some(labels) = obj
            .pointer_mut("/spec/template/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("job-name", &name),
            ] {
                labels.entry(k).or_insert_with(|| json!(v));
            }
        }
    }
}

pub(crate) fn cron_job(obj: &mut Value) {
    default_at(obj, &["spec", "concurrencyPolicy"], json!("Allow"));
    default_at(obj, &["spec", "suspend"], json!(false));
    default_at(obj, &["spec", "successfulJobsHistoryLimit"], json!(3));
    default_at(obj, &["spec", "failedJobsHistoryLimit"], json!(1));
    if let Some(spec) = obj.pointer_mut("/spec/jobTemplate/spec") {
        job_spec(spec);
    }
}

pub(crate) fn crd(obj: &mut Value) {
    default_at(obj, &["spec", "conversion", "strategy"], json!("None"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_gets_the_strategy_and_pod_defaults_a_cluster_gives() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}
        ]}}}});
        deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[1]["imagePullPolicy"], "Always");
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn defaults_never_overwrite_what_the_author_set() {
        let mut d = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
        deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 0);
        assert!(d["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn pod_qos_follows_requests_and_limits() {
        let mut p = json!({"spec": {"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        pod(&mut p);
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        let mut p = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        pod(&mut p);
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        assert_eq!(p["status"]["phase"], "Pending");
    }

    #[test]
    fn namespaces_carry_their_name_label() {
        let mut ns = json!({"metadata": {"name": "team-a"}});
        namespace(&mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    }
}
