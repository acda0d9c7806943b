//! The ConfigMap holding the proxy configuration file.

use super::{CONFIG_KEY, Meta, config_map_name};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

/// ConfigMap `<name>-config` with `config.toml`.
pub fn config_map(meta: &Meta, toml: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta.child(config_map_name(&meta.name)),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), toml.to_string())])),
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
    }
}
