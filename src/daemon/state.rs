//! Maintenance that survives a restart: the VIPs an operator drained or
//! withdrew and the real servers they took out, kept in a small JSON file
//! (`state_file`, by default `/var/lib/anycastd/state.json`) and applied
//! again at start, before anything is announced, until undone.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The operator's standing decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// VIPs drained (`anycastd drain`), until `undrain`.
    #[serde(default)]
    pub drained: BTreeSet<Ipv4Addr>,
    /// VIPs withdrawn (`anycastd vip withdraw`), until `vip advertise`.
    #[serde(default)]
    pub withdrawn: BTreeSet<Ipv4Addr>,
    /// Real servers taken out (`anycastd server disable VIP SERVER`),
    /// until `server enable`.
    #[serde(default)]
    pub disabled: BTreeSet<(Ipv4Addr, IpAddr)>,
}

impl Maintenance {
    /// Reads `path`; a missing file is no maintenance.
    pub fn load(path: &Path) -> Result<Maintenance> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{}: not a state file of anycastd", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Maintenance::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Writes `path` whole or not at all (a temporary file renamed over
    /// it), creating its directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = std::path::PathBuf::from(tmp);
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("write {}", tmp.display()))?;
        serde_json::to_writer_pretty(&mut f, self)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("replace {}", path.display()))
    }

    /// True when nothing is kept.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.drained.is_empty() && self.withdrawn.is_empty() && self.disabled.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_reads_back_and_a_missing_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("anycastd-state-{}", std::process::id()));
        let path = dir.join("sub").join("state.json");
        assert!(Maintenance::load(&path)
            .expect("missing is fine")
            .is_empty());
        let mut m = Maintenance::default();
        m.drained.insert(Ipv4Addr::new(192, 0, 2, 10));
        m.withdrawn.insert(Ipv4Addr::new(192, 0, 2, 11));
        m.disabled.insert((
            Ipv4Addr::new(192, 0, 2, 10),
            "198.18.1.1".parse().expect("ip"),
        ));
        m.save(&path).expect("save");
        assert_eq!(Maintenance::load(&path).expect("load"), m);
        std::fs::write(&path, "{\"drainde\": []}").expect("write");
        let err = Maintenance::load(&path).expect_err("refused");
        assert!(err.to_string().contains("not a state file"), "{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
