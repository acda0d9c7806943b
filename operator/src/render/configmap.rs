//! The ConfigMap holding the proxy configuration file.

use super::{CONFIG_KEY, Meta, config_map_name};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

/// ConfigMap `<name>-config` with `config.toml` and the filter and download-mode files. Mounted
/// as a whole folder (no subPath), so the kubelet updates the files in running pods.
pub fn config_map(meta: &Meta, toml: &str, policy_files: BTreeMap<String, String>) -> ConfigMap {
    let mut data = policy_files;
    data.insert(CONFIG_KEY.to_string(), toml.to_string());
    ConfigMap {
        metadata: meta.child(config_map_name(&meta.name)),
        data: Some(data),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn holds_the_rendered_config() {
        let p = proxy(fs());
        let d = desired(&p, &Secrets::new(), &Settings::default()).unwrap();
        assert_eq!(d.config_map.metadata.name.as_deref(), Some("gomods-config"));
        let toml = &d.config_map.data.as_ref().unwrap()["config.toml"];
        let parsed = athens_config::Config::from_toml(toml, "cm").unwrap();
        assert_eq!(parsed, proxy_config(&p.spec));
        assert_eq!(
            d.config_map.data.as_ref().unwrap().len(),
            1,
            "no policy files unasked"
        );
    }

    #[test]
    fn policy_files_change_without_changing_the_pod_template() {
        let mut p = proxy(fs());
        p.spec.filter = Some(crate::crd::FilterSpec {
            rules: vec!["-".into(), "+ github.com/gomods/athens v0.1,v0.2".into()],
            global_endpoint: None,
            config_map_ref: None,
        });
        p.spec.download_modes = Some(crate::crd::DownloadModesSpec {
            mode: Some("async".into()),
            ..Default::default()
        });
        let d = desired(&p, &Secrets::new(), &crate::render::Settings::default()).unwrap();
        let data = d.config_map.data.as_ref().unwrap();
        assert_eq!(data["filter"], "-\n+ github.com/gomods/athens v0.1,v0.2\n");
        assert_eq!(
            data["download.hcl"],
            "mode = \"async\"\ndownloadURL = \"\"\n"
        );
        let cfg = athens_config::Config::from_toml(&data["config.toml"], "cm").unwrap();
        assert_eq!(cfg.policy.filter_file, "/etc/athens/filter");
        assert_eq!(cfg.policy.download_mode, "file:/etc/athens/download.hcl");

        let mut p2 = p.clone();
        p2.spec
            .filter
            .as_mut()
            .unwrap()
            .rules
            .push("- github.com/bad".into());
        p2.spec.download_modes.as_mut().unwrap().mode = Some("none".into());
        let d2 = desired(&p2, &Secrets::new(), &crate::render::Settings::default()).unwrap();
        assert_ne!(d2.config_map, d.config_map);
        assert_eq!(
            d2.deployment, d.deployment,
            "rule changes reload; they do not roll pods"
        );
    }

    #[test]
    fn config_map_refs_are_mounted_not_copied() {
        let mut p = proxy(fs());
        let r = crate::crd::ConfigMapKeyRef {
            name: "team-filter".into(),
            key: "rules".into(),
        };
        p.spec.filter = Some(crate::crd::FilterSpec {
            config_map_ref: Some(r),
            ..Default::default()
        });
        let d = desired(&p, &Secrets::new(), &crate::render::Settings::default()).unwrap();
        let data = d.config_map.data.as_ref().unwrap();
        assert!(!data.contains_key("filter"));
        let cfg = athens_config::Config::from_toml(&data["config.toml"], "cm").unwrap();
        assert_eq!(cfg.policy.filter_file, "/etc/athens-policy/filter/filter");
        let pod = d.deployment.spec.unwrap().template.spec.unwrap();
        let vol = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "policy-filter")
            .unwrap();
        let cm = vol.config_map.unwrap();
        assert_eq!(cm.name, "team-filter");
        assert_eq!(cm.items.unwrap()[0].key, "rules");
        let mounts = pod.containers[0].volume_mounts.clone().unwrap();
        let m = mounts.iter().find(|m| m.name == "policy-filter").unwrap();
        assert_eq!(m.mount_path, "/etc/athens-policy/filter");
        assert_eq!(m.sub_path, None, "a subPath mount would never see edits");
    }
}
