//! The prefix's software bill of materials: CycloneDX 1.5 JSON (`sbom.cdx.json`).
//!
//! One component per installed distribution: name, version, purl (`pkg:pypi/…`), the sha256 and
//! download URL of the artifact it came from, how it was obtained (a wheel, built from an sdist,
//! from a git commit, or from the application's own tree), and for built ones the build
//! environment. The application itself is the metadata component, with the applied patches as
//! its pedigree. Nothing in it varies between runs: the timestamp is SOURCE_DATE_EPOCH's and the
//! serial number is derived from the content.

use serde::Serialize;

use crate::lock::{AkpkgLock, BuildKind};

// The document's types: a typed serde model of the parts of CycloneDX 1.5 akpkg writes (the
// `cyclonedx-bom` crate was weighed: its 0.8 line models 1.5, but pulls in a validation layer
// and its own purl and date types for what is a few structs here). Fields are declared in the
// alphabetical order of their JSON names, the order the document had as untyped JSON, so its
// bytes (and its content-derived serial number) did not change.

/// A CycloneDX document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    bom_format: &'static str,
    pub components: Vec<Component>,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    spec_version: &'static str,
    version: u32,
}

#[derive(Debug, Serialize)]
pub struct Metadata {
    pub component: Component,
    pub timestamp: String,
    pub tools: Tools,
}

#[derive(Debug, Serialize)]
pub struct Tools {
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentType {
    Application,
    Library,
}

/// One component; what a kind of component does not have is left out of the document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pedigree: Option<Pedigree>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<Property>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(rename = "type")]
    pub kind: ComponentType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Component {
    fn new(kind: ComponentType, name: impl Into<String>) -> Component {
        Component {
            bom_ref: None,
            external_references: Vec::new(),
            hashes: Vec::new(),
            name: name.into(),
            pedigree: None,
            properties: None,
            purl: None,
            kind,
            version: None,
        }
    }

    /// A component named by its purl, which is its `bom-ref` too.
    fn with_purl(kind: ComponentType, name: impl Into<String>, purl: String) -> Component {
        Component {
            bom_ref: Some(purl.clone()),
            purl: Some(purl),
            ..Component::new(kind, name)
        }
    }

    fn version(mut self, version: impl Into<String>) -> Component {
        self.version = Some(version.into());
        self
    }

    fn hash(mut self, algorithm: HashAlgorithm, content: impl Into<String>) -> Component {
        self.hashes.push(Hash {
            algorithm,
            content: content.into(),
        });
        self
    }

    fn property(mut self, name: &str, value: impl Into<String>) -> Component {
        self.properties
            .get_or_insert_with(Vec::new)
            .push(property(name, value));
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HashAlgorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "SHA-512")]
    Sha512,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hash {
    #[serde(rename = "alg")]
    pub algorithm: HashAlgorithm,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceType {
    Distribution,
    Vcs,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExternalReference {
    #[serde(rename = "type")]
    pub kind: ReferenceType,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Property {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pedigree {
    pub patches: Vec<Patch>,
}

/// A patch applied to the application's source (CycloneDX's `unofficial` patch type).
#[derive(Debug, Clone, Serialize)]
pub struct Patch {
    pub diff: Diff,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub text: DiffText,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffText {
    pub content: String,
    pub content_type: &'static str,
}

fn property(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.to_string(),
        value: value.into(),
    }
}

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

/// A purl through the purl crate (which percent-encodes each part); a part the crate refuses
/// leaves a plain `pkg:` text, so the document stays whole.
fn purl(kind: &str, namespace: Option<&str>, name: &str, version: &str) -> String {
    let plain = || match namespace {
        Some(namespace) => format!("pkg:{kind}/{namespace}/{name}@{version}"),
        None => format!("pkg:{kind}/{name}@{version}"),
    };
    let Ok(mut purl) = packageurl::PackageUrl::new(kind, name) else {
        return plain();
    };
    if let Some(namespace) = namespace
        && purl.with_namespace(namespace).is_err()
    {
        return plain();
    }
    if purl.with_version(version).is_err() {
        return plain();
    }
    purl.to_string()
}

/// `pkg:pypi/NAME@VERSION`, the name normalized.
fn pypi_purl(name: &str, version: &str) -> String {
    purl("pypi", None, &purl_name(name), version)
}

/// What the SBOM records of the Go server.
pub struct SbomServer<'a> {
    /// Its path in the prefix (`bin/authentik`).
    pub binary: &'a str,
    pub sha256: &'a str,
    pub go: &'a str,
    pub modules: &'a [crate::server::LinkedModule],
    /// The API client generated in place of a module, when it was.
    pub api_client: Option<&'a crate::lock::LockedGoApiClient>,
}

/// `pkg:golang/NAMESPACE/NAME@VERSION`.
fn golang_purl(module: &crate::server::LinkedModule) -> String {
    let (namespace, name) = module
        .path
        .rsplit_once('/')
        .map_or((None, module.path.as_str()), |(namespace, name)| {
            (Some(namespace), name)
        });
    purl("golang", namespace, name, module.version.as_str())
}

/// The server binary and one component per Go module linked into it, with its go.sum hash.
fn go_components(server: &SbomServer) -> Vec<Component> {
    let mut binary = Component::new(ComponentType::Application, server.binary)
        .hash(HashAlgorithm::Sha256, server.sha256)
        .property("akpkg:obtained", "built from the application's source tree")
        .property("akpkg:go", server.go);
    binary.bom_ref = Some(format!("file:{}", server.binary));
    let mut entries = vec![binary];
    for module in server.modules {
        let mut component = Component::with_purl(
            ComponentType::Library,
            module.path.as_str(),
            golang_purl(module),
        )
        .version(module.version.as_str());
        component.properties = Some(Vec::new());
        if let Some(sum) = &module.sum {
            component = component.property("akpkg:go-sum", sum.as_str());
        }
        entries.push(component);
    }
    if let Some(client) = server.api_client {
        entries.push(
            maven_component(&client.generator, "generated the Go server's API client")
                .property("akpkg:go-api-client", client.module.as_str())
                .property("akpkg:schema-blob", client.schema_blob.as_str()),
        );
    }
    entries
}

/// A jar from Maven Central: `pkg:maven/GROUP/ARTIFACT@VERSION`, its sha256.
fn maven_component(jar: &crate::lock::LockedJar, obtained: &str) -> Component {
    let (group, artifact) = jar.name.split_once(':').unwrap_or(("", jar.name.as_str()));
    let purl = purl("maven", Some(group), artifact, jar.version.as_str());
    Component::with_purl(ComponentType::Application, jar.name.clone(), purl)
        .version(jar.version.as_str())
        .hash(HashAlgorithm::Sha256, jar.sha256.as_str())
        .property("akpkg:obtained", obtained)
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
fn native_components(closure: &crate::closure::ClosureReport) -> Vec<Component> {
    let mut entries = Vec::new();
    if let Some(interpreter) = &closure.interpreter {
        let purl = format!("pkg:generic/cpython@{}", interpreter.version);
        entries.push(
            Component::with_purl(ComponentType::Application, "cpython", purl)
                .version(interpreter.version.clone())
                .hash(HashAlgorithm::Sha256, interpreter.sha256.clone())
                .property("akpkg:obtained", "copied from the build interpreter")
                .property("akpkg:file", interpreter.executable.clone()),
        );
    }
    for library in &closure.grafted {
        let mut component = Component::new(ComponentType::Library, library.soname.clone())
            .hash(HashAlgorithm::Sha256, library.sha256.clone())
            .property("akpkg:obtained", "grafted from the build machine")
            .property("akpkg:file", library.file.clone());
        component.bom_ref = Some(format!("file:{}", library.file));
        if let (Some(package), Some(version)) = (&library.package, &library.version) {
            component.version = Some(version.clone());
            component.purl = Some(debian_purl(package, version));
        }
        entries.push(component);
    }
    entries
}

/// `pkg:npm/NAMESPACE/NAME@VERSION` (`@scope` percent-encoded).
fn npm_purl(name: &str, version: &str) -> String {
    match name.split_once('/') {
        Some((scope, short)) if scope.starts_with('@') => purl("npm", Some(scope), short, version),
        _ => purl("npm", None, name, version),
    }
}

fn npm_component(package: &super::web::WebPackage, obtained: &str) -> Component {
    Component::with_purl(
        ComponentType::Library,
        package.name.clone(),
        npm_purl(&package.name, &package.version),
    )
    .version(package.version.clone())
    .hash(HashAlgorithm::Sha512, package.integrity.hex())
    .property("akpkg:obtained", obtained)
}

/// Every npm package the web UI was built with, its overrides, Node, npm and the generator.
fn web_components(web: &super::web::WebRecord) -> Vec<Component> {
    let mut entries: Vec<Component> = web
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
        entries.push(
            npm_component(&package, "npm package of the web UI build")
                .property("akpkg:override", resolved.source.clone()),
        );
    }
    entries.push(npm_component(&web.node, "Node, which built the web UI"));
    entries.push(npm_component(
        &web.npm,
        "npm, which installed the web UI's packages",
    ));
    if let Some(generator) = &web.generator {
        entries.push(maven_component(
            generator,
            "generated the web UI's API client",
        ));
    }
    // A package nested at several places is one component.
    entries.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    entries.dedup_by(|a, b| a.bom_ref == b.bom_ref);
    entries
}

/// The component of one installed Python distribution: how it was obtained and from what.
fn python_component(lock: &AkpkgLock, component: &SbomComponent<'_>) -> Component {
    let name = purl_name(component.name);
    let runtime = lock
        .runtime
        .iter()
        .find(|file| purl_name(&file.name) == name && file.version == component.version);
    let build = lock
        .build
        .iter()
        .find(|build| purl_name(&build.name) == name);
    let mut entry = Component::with_purl(
        ComponentType::Library,
        component.name,
        pypi_purl(component.name, component.version),
    )
    .version(component.version)
    .hash(HashAlgorithm::Sha256, component.wheel_sha256);
    entry.properties = Some(Vec::new());
    let Some(build) = build else {
        if let Some(file) = runtime {
            entry.external_references.push(ExternalReference {
                kind: ReferenceType::Distribution,
                url: file.url.clone(),
            });
        }
        return entry.property("akpkg:obtained", "wheel");
    };
    let obtained = match build.kind {
        BuildKind::Sdist => "built from sdist",
        BuildKind::Git => "built from a git commit",
        BuildKind::Project | BuildKind::Workspace => "built from the application's source tree",
        BuildKind::Directory => "built from a source directory",
    };
    entry = entry.property("akpkg:obtained", obtained);
    // The built wheel's own hash is the first; the source's follows.
    if let Some(file) = runtime.filter(|file| !file.filename.ends_with(".whl")) {
        entry.hashes.clear();
        entry = entry
            .hash(HashAlgorithm::Sha256, file.sha256.clone())
            .property("akpkg:wheel-sha256", component.wheel_sha256);
        entry.external_references.push(ExternalReference {
            kind: ReferenceType::Distribution,
            url: file.url.clone(),
        });
    }
    if let Some(git) = lock.git.iter().find(|git| purl_name(&git.name) == name) {
        entry.external_references.push(ExternalReference {
            kind: ReferenceType::Vcs,
            url: format!("{}@{}", git.repository, git.commit),
        });
        entry = entry.property("akpkg:git-tree", git.tree.clone());
    }
    entry = entry.property("akpkg:build-backend", build.backend.clone());
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
        entry = entry.property("akpkg:build-environment", pins.join(", "));
    }
    entry
}

/// The application itself, with the applied patches as its pedigree.
fn application_component(
    application: (&str, &str),
    source_tree: &str,
    patches: &[crate::patch::PatchReport],
) -> Component {
    let patches = patches
        .iter()
        .map(|patch| Patch {
            diff: Diff {
                text: DiffText {
                    content: format!(
                        "{} (sha256 {}): {}",
                        patch.origin,
                        patch.sha256,
                        patch.files.join(", ")
                    ),
                    content_type: "text/plain",
                },
            },
            kind: "unofficial",
        })
        .collect();
    let mut component = Component::new(ComponentType::Application, application.0)
        .version(application.1)
        .property("akpkg:source-tree", source_tree);
    component.bom_ref = Some(format!("{}@{}", application.0, application.1));
    component.pedigree = Some(Pedigree { patches });
    component
}

/// Everything the SBOM records, beside the lock.
pub struct SbomInputs<'a> {
    /// The application's name and version.
    pub application: (&'a str, &'a str),
    pub source_tree: &'a str,
    pub components: &'a [SbomComponent<'a>],
    pub server: Option<&'a SbomServer<'a>>,
    pub web: Option<&'a super::web::WebRecord>,
    pub patches: &'a [crate::patch::PatchReport],
    pub closure: &'a crate::closure::ClosureReport,
    pub timestamp: String,
}

/// The SBOM document.
pub fn sbom(lock: &AkpkgLock, inputs: SbomInputs<'_>) -> Result<Bom, serde_json::Error> {
    let mut entries: Vec<Component> = inputs
        .components
        .iter()
        .map(|component| python_component(lock, component))
        .collect();
    if let Some(server) = inputs.server {
        entries.extend(go_components(server));
    }
    if let Some(web) = inputs.web {
        entries.extend(web_components(web));
    }
    entries.extend(native_components(inputs.closure));
    entries.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    let tool =
        Component::new(ComponentType::Application, "akpkg").version(env!("CARGO_PKG_VERSION"));
    let mut bom = Bom {
        bom_format: "CycloneDX",
        components: entries,
        metadata: Metadata {
            component: application_component(
                inputs.application,
                inputs.source_tree,
                inputs.patches,
            ),
            timestamp: inputs.timestamp,
            tools: Tools {
                components: vec![tool],
            },
        },
        serial_number: None,
        spec_version: "1.5",
        version: 1,
    };
    // A serial number derived from the content: the same inputs, the same document.
    let digest = crate::digest::sha256_hex(serde_json::to_string(&bom)?.as_bytes());
    bom.serial_number = Some(format!(
        "urn:uuid:{}-{}-4{}-8{}-{}",
        &digest[..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    ));
    Ok(bom)
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

    #[test]
    fn the_go_clients_generator_is_a_maven_component_of_the_server() {
        let sha256 = crate::identity::Sha256::of_bytes(b"jar");
        let client = crate::lock::LockedGoApiClient {
            module: "goauthentik.io/api/v3".parse().unwrap(),
            generator: crate::lock::LockedJar {
                name: "org.openapitools:openapi-generator-cli".into(),
                version: "7.19.0".into(),
                url: "https://repo1.maven.org/x.jar".into(),
                sha256: sha256.clone(),
            },
            configuration_sha256: crate::identity::Sha256::of_bytes(b"settings"),
            schema: "schema.yml".parse().unwrap(),
            schema_blob: "62446afe49316f78170602d07f0f714fa6e78c35".into(),
        };
        let server = super::SbomServer {
            binary: "bin/authentik",
            sha256: "00",
            go: "go1.25.5",
            modules: &[],
            api_client: Some(&client),
        };
        let components = super::go_components(&server);
        assert_eq!(components.len(), 2);
        let generator = &components[1];
        assert_eq!(
            generator.purl.as_deref(),
            Some("pkg:maven/org.openapitools/openapi-generator-cli@7.19.0")
        );
        let json = serde_json::to_string(generator).unwrap();
        assert!(json.contains(sha256.as_str()), "{json}");
        assert!(json.contains("goauthentik.io/api/v3"), "{json}");
        assert!(
            json.contains("62446afe49316f78170602d07f0f714fa6e78c35"),
            "{json}"
        );
    }
}
