//! The prefix's software bill of materials: CycloneDX 1.5 JSON (`sbom.cdx.json`).
//!
//! One component per installed distribution: name, version, purl (`pkg:pypi/…`), the sha256 and
//! download URL of the artifact it came from, how it was obtained (a wheel, built from an sdist,
//! from a git commit, or from the application's own tree), and for built ones the build
//! environment. The application itself is the metadata component, with the applied patches as
//! its pedigree. Nothing in it varies between runs: the timestamp is SOURCE_DATE_EPOCH's and the
//! serial number is derived from the content.

use serde_json::{Value, json};

use crate::lock::{AkpkgLock, BuildKind};

/// What the SBOM records of one installed distribution.
pub struct SbomComponent<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The sha256 of the wheel installed.
    pub wheel_sha256: &'a str,
}

/// A purl's name: lowercase, runs of `-_.` as `-` (the purl spec's PyPI rule).
fn purl_name(name: &str) -> String {
    let mut normalized = String::new();
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !normalized.ends_with('-') {
                normalized.push('-');
            }
        } else {
            normalized.push(character.to_ascii_lowercase());
        }
    }
    normalized
}

fn property(name: &str, value: impl Into<String>) -> Value {
    json!({ "name": name, "value": value.into() })
}

/// What the SBOM records of the Go server.
pub struct SbomServer<'a> {
    /// Its path in the prefix (`bin/authentik`).
    pub binary: &'a str,
    pub sha256: &'a str,
    pub go: &'a str,
    pub modules: &'a [crate::server::LinkedModule],
}

/// `pkg:golang/NAMESPACE/NAME@VERSION`, percent-encoded by the purl crate.
fn golang_purl(module: &crate::server::LinkedModule) -> String {
    let (namespace, name) = module
        .path
        .rsplit_once('/')
        .map_or((None, module.path.as_str()), |(namespace, name)| {
            (Some(namespace), name)
        });
    let Ok(mut purl) = packageurl::PackageUrl::new("golang", name) else {
        return format!("pkg:golang/{}@{}", module.path, module.version);
    };
    if let Some(namespace) = namespace {
        // Valid module paths are valid namespaces; the fallback keeps the document whole.
        let _ = purl.with_namespace(namespace);
    }
    let _ = purl.with_version(module.version.as_str());
    purl.to_string()
}

/// The server binary and one component per Go module linked into it, with its go.sum hash.
fn go_components(server: &SbomServer) -> Vec<Value> {
    let mut entries = vec![json!({
        "type": "application",
        "bom-ref": format!("file:{}", server.binary),
        "name": server.binary,
        "hashes": [{ "alg": "SHA-256", "content": server.sha256 }],
        "properties": [
            property("akpkg:obtained", "built from the application's source tree"),
            property("akpkg:go", server.go),
        ],
    })];
    for module in server.modules {
        let purl = golang_purl(module);
        let mut properties = Vec::new();
        if let Some(sum) = &module.sum {
            properties.push(property("akpkg:go-sum", sum.as_str()));
        }
        entries.push(json!({
            "type": "library",
            "bom-ref": purl,
            "name": module.path.as_str(),
            "version": module.version.as_str(),
            "purl": purl,
            "properties": properties,
        }));
    }
    entries
}

/// `pkg:deb/debian/NAME@VERSION?arch=ARCH` (the version's epoch colon percent-encoded).
fn debian_purl(name: &str, version: &str) -> String {
    let Ok(mut purl) = packageurl::PackageUrl::new("deb", name) else {
        return format!("pkg:deb/debian/{name}@{version}");
    };
    let _ = purl.with_namespace("debian");
    let _ = purl.with_version(version);
    let _ = purl.add_qualifier("arch", crate::closure::elf::debian_architecture());
    purl.to_string()
}

/// A self-contained prefix's interpreter and grafted libraries: each library as the file it
/// is in the prefix, from the Debian package (a purl) its original came from.
fn native_components(closure: &crate::closure::ClosureReport) -> Vec<Value> {
    let mut entries = Vec::new();
    if let Some(interpreter) = &closure.interpreter {
        let purl = format!("pkg:generic/cpython@{}", interpreter.version);
        entries.push(json!({
            "type": "application",
            "bom-ref": purl,
            "name": "cpython",
            "version": interpreter.version,
            "purl": purl,
            "hashes": [{ "alg": "SHA-256", "content": interpreter.sha256 }],
            "properties": [
                property("akpkg:obtained", "copied from the build interpreter"),
                property("akpkg:file", interpreter.executable.clone()),
            ],
        }));
    }
    for library in &closure.grafted {
        let mut component = json!({
            "type": "library",
            "bom-ref": format!("file:{}", library.file),
            "name": library.soname,
            "hashes": [{ "alg": "SHA-256", "content": library.sha256 }],
            "properties": [
                property("akpkg:obtained", "grafted from the build machine"),
                property("akpkg:file", library.file.clone()),
            ],
        });
        if let (Some(package), Some(version)) = (&library.package, &library.version) {
            component["version"] = json!(version);
            component["purl"] = json!(debian_purl(package, version));
        }
        entries.push(component);
    }
    entries
}

/// `pkg:npm/NAMESPACE/NAME@VERSION` (`@scope` percent-encoded by the purl crate).
fn npm_purl(name: &str, version: &str) -> String {
    let (namespace, short) = match name.split_once('/') {
        Some((scope, short)) if scope.starts_with('@') => (Some(scope), short),
        _ => (None, name),
    };
    let Ok(mut purl) = packageurl::PackageUrl::new("npm", short) else {
        return format!("pkg:npm/{name}@{version}");
    };
    if let Some(namespace) = namespace {
        let _ = purl.with_namespace(namespace);
    }
    let _ = purl.with_version(version);
    purl.to_string()
}

fn npm_component(package: &super::web::WebPackage, obtained: &str) -> Value {
    let purl = npm_purl(&package.name, &package.version);
    json!({
        "type": "library",
        "bom-ref": purl,
        "name": package.name,
        "version": package.version,
        "purl": purl,
        "hashes": [{ "alg": "SHA-512", "content": package.integrity.hex() }],
        "properties": [property("akpkg:obtained", obtained)],
    })
}

/// Every npm package the web UI was built with, its overrides, Node, npm and the generator.
fn web_components(web: &super::web::WebRecord) -> Vec<Value> {
    let mut entries: Vec<Value> = web
        .packages
        .iter()
        .map(|package| npm_component(package, "npm package of the web UI build"))
        .collect();
    for resolved in &web.overrides {
        let package = super::web::WebPackage {
            name: resolved.package.clone(),
            version: resolved.version.clone(),
            integrity: resolved.integrity.clone(),
        };
        let mut component = npm_component(&package, "npm package of the web UI build");
        if let Some(properties) = component["properties"].as_array_mut() {
            properties.push(property("akpkg:override", resolved.source.clone()));
        }
        entries.push(component);
    }
    entries.push(npm_component(&web.node, "Node, which built the web UI"));
    entries.push(npm_component(
        &web.npm,
        "npm, which installed the web UI's packages",
    ));
    if let Some(generator) = &web.generator {
        let (group, artifact) = generator
            .name
            .split_once(':')
            .unwrap_or(("", generator.name.as_str()));
        let purl = packageurl::PackageUrl::new("maven", artifact)
            .map(|mut purl| {
                let _ = purl.with_namespace(group);
                let _ = purl.with_version(generator.version.as_str());
                purl.to_string()
            })
            .unwrap_or_else(|_| format!("pkg:maven/{}@{}", generator.name, generator.version));
        entries.push(json!({
            "type": "application",
            "bom-ref": purl,
            "name": generator.name,
            "version": generator.version,
            "purl": purl,
            "hashes": [{ "alg": "SHA-256", "content": generator.sha256.as_str() }],
            "properties": [property("akpkg:obtained", "generated the web UI's API client")],
        }));
    }
    // A package nested at several places is one component.
    entries.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    entries.dedup_by(|a, b| a["bom-ref"] == b["bom-ref"]);
    entries
}

/// The SBOM as JSON.
#[allow(clippy::too_many_arguments)]
pub fn sbom(
    application: (&str, &str),
    source_tree: &str,
    lock: &AkpkgLock,
    components: &[SbomComponent<'_>],
    server: Option<&SbomServer<'_>>,
    web: Option<&super::web::WebRecord>,
    patches: &[crate::patch::PatchReport],
    closure: &crate::closure::ClosureReport,
    timestamp: &str,
) -> Value {
    let normalized = |name: &str| purl_name(name);
    let mut entries: Vec<Value> = components
        .iter()
        .map(|component| {
            let purl = format!(
                "pkg:pypi/{}@{}",
                purl_name(component.name),
                component.version
            );
            let name = normalized(component.name);
            let runtime = lock
                .runtime
                .iter()
                .find(|file| normalized(&file.name) == name && file.version == component.version);
            let build = lock
                .build
                .iter()
                .find(|build| normalized(&build.name) == name);
            let mut hashes = vec![json!({ "alg": "SHA-256", "content": component.wheel_sha256 })];
            let mut references = Vec::new();
            let mut properties = Vec::new();
            match build {
                None => {
                    properties.push(property("akpkg:obtained", "wheel"));
                    if let Some(file) = runtime {
                        references.push(json!({ "type": "distribution", "url": file.url }));
                    }
                }
                Some(build) => {
                    let obtained = match build.kind {
                        BuildKind::Sdist => "built from sdist",
                        BuildKind::Git => "built from a git commit",
                        BuildKind::Project | BuildKind::Workspace => {
                            "built from the application's source tree"
                        }
                        BuildKind::Directory => "built from a source directory",
                    };
                    properties.push(property("akpkg:obtained", obtained));
                    // The built wheel's own hash is the first; the source's follows.
                    if let Some(file) = runtime.filter(|file| !file.filename.ends_with(".whl")) {
                        hashes.clear();
                        hashes.push(json!({ "alg": "SHA-256", "content": file.sha256 }));
                        references.push(json!({ "type": "distribution", "url": file.url }));
                        properties.push(property("akpkg:wheel-sha256", component.wheel_sha256));
                    }
                    if let Some(git) = lock.git.iter().find(|git| normalized(&git.name) == name) {
                        references.push(json!({
                            "type": "vcs",
                            "url": format!("{}@{}", git.repository, git.commit),
                        }));
                        properties.push(property("akpkg:git-tree", git.tree.clone()));
                    }
                    properties.push(property("akpkg:build-backend", build.backend.clone()));
                    if let Some((_, environment)) = lock.environment_of(&build.name) {
                        let pins: Vec<String> = environment
                            .packages
                            .iter()
                            .map(|package| {
                                format!(
                                    "{}=={} sha256:{}",
                                    package.name, package.version, package.sha256
                                )
                            })
                            .collect();
                        properties.push(property("akpkg:build-environment", pins.join(", ")));
                    }
                }
            }
            let mut component = json!({
                "type": "library",
                "bom-ref": purl,
                "name": component.name,
                "version": component.version,
                "purl": purl,
                "hashes": hashes,
                "properties": properties,
            });
            if !references.is_empty() {
                component["externalReferences"] = Value::Array(references);
            }
            component
        })
        .collect();
    if let Some(server) = server {
        entries.extend(go_components(server));
    }
    if let Some(web) = web {
        entries.extend(web_components(web));
    }
    entries.extend(native_components(closure));
    entries.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let patches: Vec<Value> = patches
        .iter()
        .map(|patch| {
            json!({
                "type": "unofficial",
                "diff": { "text": {
                    "contentType": "text/plain",
                    "content": format!("{} (sha256 {}): {}", patch.origin, patch.sha256, patch.files.join(", ")),
                } },
            })
        })
        .collect();
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": { "components": [{
                "type": "application",
                "name": "akpkg",
                "version": env!("CARGO_PKG_VERSION"),
            }] },
            "component": {
                "type": "application",
                "bom-ref": format!("{}@{}", application.0, application.1),
                "name": application.0,
                "version": application.1,
                "properties": [property("akpkg:source-tree", source_tree)],
                "pedigree": { "patches": patches },
            },
        },
        "components": entries,
    });
    // A serial number derived from the content: the same inputs, the same document.
    let digest = crate::digest::sha256_hex(bom.to_string().as_bytes());
    bom["serialNumber"] = Value::String(format!(
        "urn:uuid:{}-{}-4{}-8{}-{}",
        &digest[..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    ));
    bom
}

#[cfg(test)]
mod tests {
    #[test]
    fn purl_names_are_normalized() {
        assert_eq!(super::purl_name("Django_Tenants"), "django-tenants");
        assert_eq!(super::purl_name("zope.interface"), "zope-interface");
        assert_eq!(super::purl_name("a-_b"), "a-b");
    }

    #[test]
    fn debian_purls_encode_the_epoch() {
        assert_eq!(
            super::debian_purl("zlib1g", "1:1.2.13.dfsg-1"),
            format!(
                "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch={}",
                crate::closure::elf::debian_architecture()
            )
        );
    }

    #[test]
    fn golang_purls_split_the_namespace_and_encode() {
        let module = |path: &str, version: &str| crate::server::LinkedModule {
            path: path.parse().unwrap(),
            version: version.parse().unwrap(),
            sum: None,
        };
        assert_eq!(
            super::golang_purl(&module("github.com/gorilla/mux", "v1.8.1")),
            "pkg:golang/github.com/gorilla/mux@v1.8.1"
        );
        assert_eq!(
            super::golang_purl(&module(
                "layeh.com/radius",
                "v0.0.0-20231213012653-1006025d24f8"
            )),
            "pkg:golang/layeh.com/radius@v0.0.0-20231213012653-1006025d24f8"
        );
        assert_eq!(
            super::golang_purl(&module("example.com/a", "v2.0.0+incompatible")),
            "pkg:golang/example.com/a@v2.0.0%2Bincompatible"
        );
    }
}
