//! Made-up modules: zips built in the test, laid out as a GOPROXY folder.

use athens_proxy::module::{escape_path, escape_version};
use std::io::Write;
use std::path::Path;

/// A module version made up by a test.
#[derive(Clone, Debug)]
pub struct FakeModule {
    pub path: String,
    pub version: String,
    /// Files relative to the module root, e.g. ("go.mod", "module x\n").
    pub files: Vec<(String, Vec<u8>)>,
}

impl FakeModule {
    /// A module with a go.mod and one Go file.
    pub fn new(path: &str, version: &str) -> Self {
        let pkg = path
            .rsplit('/')
            .next()
            .unwrap_or("m")
            .replace(['.', '-'], "_");
        Self {
            path: path.into(),
            version: version.into(),
            files: vec![
                ("go.mod".into(), format!("module {path}\n\ngo 1.21\n").into_bytes()),
                (
                    format!("{pkg}.go"),
                    format!("package {pkg}\n\n// Version is this module's version.\nconst Version = \"{version}\"\n")
                        .into_bytes(),
                ),
            ],
        }
    }

    pub fn go_mod(&self) -> Vec<u8> {
        self.files
            .iter()
            .find(|(n, _)| n == "go.mod")
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| format!("module {}\n", self.path).into_bytes())
    }

    pub fn zip(&self) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, content) in &self.files {
                w.start_file(format!("{}@{}/{}", self.path, self.version, name), opts)
                    .expect("zip entry");
                w.write_all(content).expect("zip write");
            }
            w.finish().expect("zip finish");
        }
        buf.into_inner()
    }

    pub fn info(&self) -> Vec<u8> {
        format!(
            "{{\"Version\":\"{}\",\"Time\":\"2024-01-02T03:04:05Z\"}}",
            self.version
        )
        .into_bytes()
    }

    /// The case-escaped module path, as in URLs and storage keys.
    pub fn escaped_path(&self) -> String {
        escape_path(&self.path).expect("a valid module path")
    }

    /// Writes .info/.mod/.zip and the list file into a GOPROXY-layout folder.
    pub fn write_to(&self, dir: &Path) {
        let vdir = dir.join(self.escaped_path()).join("@v");
        std::fs::create_dir_all(&vdir).expect("mkdir");
        let v = escape_version(&self.version).expect("a valid version");
        std::fs::write(vdir.join(format!("{v}.info")), self.info()).expect("write info");
        std::fs::write(vdir.join(format!("{v}.mod")), self.go_mod()).expect("write mod");
        std::fs::write(vdir.join(format!("{v}.zip")), self.zip()).expect("write zip");
        let list = vdir.join("list");
        let mut text = std::fs::read_to_string(&list).unwrap_or_default();
        if !text.lines().any(|l| l == self.version) {
            text.push_str(&self.version);
            text.push('\n');
        }
        std::fs::write(list, text).expect("write list");
    }
}
