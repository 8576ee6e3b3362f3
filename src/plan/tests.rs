use std::path::PathBuf;

use super::*;
use crate::interpreter::Target;
use crate::lock;

/// A small workspace: markers on edges, an extra that pulls a dependency, a dev group,
/// a package with only a Windows wheel and an sdist, and one with only Windows wheels.
const WORKSPACE: &str = include_str!("testdata/workspace.uv.lock");

struct Fixture {
    _directory: tempfile::TempDir,
    path: PathBuf,
}

fn write_lock(text: &str) -> Fixture {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("uv.lock");
    fs_err::write(&path, text).unwrap();
    Fixture {
        _directory: directory,
        path,
    }
}

fn linux_313() -> Target {
    Target::described("3.13", "manylinux_2_36_x86_64").unwrap()
}

fn plan_text(text: &str, options: &PlanOptions, target: &Target) -> Result<Plan, PlanError> {
    let fixture = write_lock(text);
    let lock = lock::read(&fixture.path).unwrap();
    plan(&lock, target, options)
}

fn names(plan: &Plan) -> Vec<String> {
    plan.distributions
        .iter()
        .map(|d| d.name.to_string())
        .collect()
}

fn find<'a>(plan: &'a Plan, name: &str) -> &'a PlannedDistribution {
    plan.distributions
        .iter()
        .find(|d| d.name.as_ref() == name)
        .unwrap_or_else(|| panic!("{name} is not in the plan"))
}

#[test]
fn markers_extras_and_roles_decide_the_set() {
    let plan = plan_text(WORKSPACE, &PlanOptions::default(), &linux_313()).unwrap();
    // Project first, members next, then by name; no win32 or PyPy packages, no dev group.
    assert_eq!(
        names(&plan),
        ["app", "member", "fast", "native", "vcs", "web"]
    );
    assert_eq!(find(&plan, "app").role, Role::Project);
    assert_eq!(find(&plan, "member").role, Role::WorkspaceMember);
    let fast = find(&plan, "fast");
    assert_eq!(
        plan.chain(&plan.index_by_name(), fast)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["app", "web"]
    );
}

#[test]
fn actions_follow_tags_sources_and_policy() {
    let plan = plan_text(WORKSPACE, &PlanOptions::default(), &linux_313()).unwrap();
    let Action::Wheel { artifact, tag } = &find(&plan, "web").action else {
        panic!("web should install a wheel");
    };
    assert_eq!(
        artifact.filename,
        "web-2.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    );
    assert_eq!(tag, "cp313-cp313-manylinux_2_17_x86_64");
    assert_eq!(
        find(&plan, "web").reason,
        "best of 2 compatible wheels (of 3)"
    );
    assert!(
        matches!(&find(&plan, "fast").action, Action::Wheel { tag, .. } if tag == "cp311-abi3-manylinux_2_28_x86_64")
    );
    assert!(matches!(&find(&plan, "native").action,
        Action::Build { kind: BuildKind::Sdist, sdist: Some(sdist) } if sdist.filename == "native-3.0.tar.gz"));
    assert_eq!(
        find(&plan, "native").reason,
        "none of its 1 wheels fits this target"
    );
    assert!(matches!(
        find(&plan, "vcs").action,
        Action::Build {
            kind: BuildKind::Git,
            ..
        }
    ));
    assert!(matches!(
        find(&plan, "app").action,
        Action::Build {
            kind: BuildKind::Project,
            ..
        }
    ));
    assert!(matches!(
        find(&plan, "member").action,
        Action::Build {
            kind: BuildKind::Workspace,
            ..
        }
    ));
}

#[test]
fn no_binary_builds_the_sdist_and_names_its_origin() {
    let mut options = PlanOptions::default();
    options
        .binary
        .no_binary
        .names
        .insert("web".parse().unwrap(), "--no-binary web".to_string());
    let plan = plan_text(WORKSPACE, &options, &linux_313()).unwrap();
    assert!(matches!(
        find(&plan, "web").action,
        Action::Build {
            kind: BuildKind::Sdist,
            ..
        }
    ));
    assert_eq!(find(&plan, "web").reason, "no-binary: --no-binary web");
}

#[test]
fn groups_are_opt_in_and_must_exist() {
    let mut options = PlanOptions::default();
    options.groups.groups.push("dev".to_string());
    let plan = plan_text(WORKSPACE, &options, &linux_313()).unwrap();
    assert!(names(&plan).contains(&"tester".to_string()));

    let all = PlanOptions {
        groups: GroupSelection {
            groups: Vec::new(),
            all_groups: true,
        },
        ..PlanOptions::default()
    };
    assert!(
        names(&plan_text(WORKSPACE, &all, &linux_313()).unwrap()).contains(&"tester".to_string())
    );

    options.groups.groups = vec!["docs".to_string()];
    let error = plan_text(WORKSPACE, &options, &linux_313()).unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"no dependency group named `docs`; the lock's groups: dev");
}

#[test]
fn error_only_binary_without_a_wheel() {
    let mut options = PlanOptions::default();
    options.binary.only_binary.all = Some("--only-binary :all:".to_string());
    // An explicit --no-binary for a name wins over :all: of the other list.
    options
        .binary
        .no_binary
        .names
        .insert("web".parse().unwrap(), "--no-binary web".to_string());
    let error = plan_text(WORKSPACE, &options, &linux_313()).unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"`app` must be built from source (editable), but only wheels are allowed for it (--only-binary :all:)");

    let without_project = WORKSPACE.replace(
        "source = { editable = \".\" }",
        "source = { virtual = \".\" }",
    );
    let without_local = without_project
        .replace(
            "{ name = \"member\" },\n    { name = \"web\"",
            "{ name = \"web\"",
        )
        .replace("    { name = \"vcs\" },\n", "")
        .replace("members = [\"app\", \"member\"]", "members = [\"app\"]");
    let error = plan_text(&without_local, &options, &linux_313()).unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"
    `native` 3.0 may only be installed from a wheel (--only-binary :all:), but none fits this target.
      its wheels' tags: cp313-cp313-win_amd64
      the target's best tags: cp313-cp313-manylinux_2_36_x86_64, cp313-cp313-manylinux_2_35_x86_64, cp313-cp313-manylinux_2_34_x86_64, cp313-cp313-manylinux_2_33_x86_64
    ");
}

#[test]
fn error_no_usable_artifact_lists_tags() {
    let text = WORKSPACE.replace(
        "sdist = { url = \"https://files.example/native-3.0.tar.gz\", hash = \"sha256:0808080808080808080808080808080808080808080808080808080808080808\", size = 8 }\n",
        "",
    );
    let error = plan_text(&text, &PlanOptions::default(), &linux_313()).unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"
    `native` 3.0 has no wheel for this target and no sdist to build.
      its wheels' tags: cp313-cp313-win_amd64
      the target's best tags: cp313-cp313-manylinux_2_36_x86_64, cp313-cp313-manylinux_2_35_x86_64, cp313-cp313-manylinux_2_34_x86_64, cp313-cp313-manylinux_2_33_x86_64
    ");
}

#[test]
fn error_no_binary_without_sdist() {
    let mut options = PlanOptions::default();
    options
        .binary
        .no_binary
        .names
        .insert("fast".parse().unwrap(), "--no-binary fast".to_string());
    let error = plan_text(WORKSPACE, &options, &linux_313()).unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"`fast` 1.0 must be built from source (--no-binary fast), but the lock has no sdist for it");
}

#[test]
fn error_python_outside_requires_python() {
    let target = Target::described("3.11", "manylinux_2_36_x86_64").unwrap();
    let fixture = write_lock(WORKSPACE);
    let lock = lock::read(&fixture.path).unwrap();
    let error = plan(&lock, &target, &PlanOptions::default())
        .unwrap_err()
        .to_string();
    let error = error.replace(&fixture.path.display().to_string(), "uv.lock");
    insta::assert_snapshot!(error, @"uv.lock requires Python >=3.12, but the target is Python 3.11.0; choose another interpreter with --python or --python-version");
}

#[test]
fn error_two_versions_of_one_name() {
    let text = r#"
version = 1
[[package]]
name = "app"
version = "1"
source = { virtual = "." }
dependencies = [
    { name = "left" },
    { name = "shared", version = "2.0" },
]
[[package]]
name = "left"
version = "1"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "shared", version = "1.0" }]
wheels = [{ url = "https://f/left-1-py3-none-any.whl" }]
[[package]]
name = "shared"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://f/shared-1.0-py3-none-any.whl" }]
[[package]]
name = "shared"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://f/shared-2.0-py3-none-any.whl" }]
"#;
    let error = plan_text(text, &PlanOptions::default(), &linux_313()).unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"
    two versions of `shared` would be installed:
      app → shared 2.0
      app → left → shared 1.0
    ");
    // A marker that keeps one side out for this target resolves it.
    let forked = text.replace(
        "{ name = \"shared\", version = \"1.0\" }",
        "{ name = \"shared\", version = \"1.0\", marker = \"sys_platform == 'win32'\" }",
    );
    let plan = plan_text(&forked, &PlanOptions::default(), &linux_313()).unwrap();
    assert_eq!(names(&plan), ["app", "left", "shared"]);
    assert_eq!(
        find(&plan, "shared").version.as_ref().unwrap().to_string(),
        "2.0"
    );
    assert_eq!(find(&plan, "app").action, Action::Nothing);
}

#[test]
fn requirements_output_matches_uv_export_shape() {
    let plan = plan_text(WORKSPACE, &PlanOptions::default(), &linux_313()).unwrap();
    insta::assert_snapshot!(render_requirements(&plan), @"
    -e .
    -e ./packages/member
    fast==1.0
    native==3.0
    vcs @ git+https://example.org/vcs@0123456789abcdef0123456789abcdef01234567
    web==2.0
    ");
}

#[test]
fn table_and_json_show_actions_and_reasons() {
    let target = linux_313();
    let plan = plan_text(WORKSPACE, &PlanOptions::default(), &target).unwrap();
    insta::assert_snapshot!(render_table(&plan, &target), @"
    6 distributions for CPython 3.13.0 on manylinux_2_36_x86_64: 2 wheels, 4 builds
    NAME    VERSION  SOURCE    ACTION                                   WHY                                    REQUIRED BY
    app     1.0.0    editable  build (project)                          the project itself                     (root)
    member  0.1.0    editable  build (workspace)                        workspace member at packages/member    (root)
    fast    1.0      registry  wheel cp311-abi3-manylinux_2_28_x86_64   best of 1 compatible wheels (of 1)     web
    native  3.0      registry  build (sdist)                            none of its 1 wheels fits this target  app
    vcs     0.1      git       build (git)                              git source at commit 0123456789ab      app
    web     2.0      registry  wheel cp313-cp313-manylinux_2_17_x86_64  best of 2 compatible wheels (of 3)     app
    ");
    let json = render_json(&plan, &target, std::path::Path::new("uv.lock"));
    let web = &json["distributions"][5];
    assert_eq!(web["name"], "web");
    assert_eq!(web["action"], "wheel");
    assert_eq!(web["artifact"]["sha256"], "03".repeat(32));
    assert_eq!(web["artifact"]["size"], 3);
    assert_eq!(json["distributions"][3]["build"], "sdist");
    assert_eq!(
        json["distributions"][3]["artifact"]["filename"],
        "native-3.0.tar.gz"
    );
    assert_eq!(json["distributions"][4]["source"]["kind"], "git");
    assert_eq!(json["target"]["platform"], "manylinux_2_36_x86_64");
}

#[test]
fn flat_requirements_files_plan_by_marker_and_hash() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("requirements.txt");
    fs_err::write(
        &path,
        "django==5.2.11 --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --hash=sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\ncolorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n",
    )
    .unwrap();
    let lock = lock::read(&path).unwrap();
    let plan = plan(&lock, &linux_313(), &PlanOptions::default()).unwrap();
    assert_eq!(names(&plan), ["django"]);
    assert!(
        matches!(&plan.distributions[0].action, Action::FromIndex { hashes } if hashes.len() == 2)
    );
}

#[test]
fn streamed_json_is_exactly_the_pretty_printed_value() {
    let target = linux_313();
    let plan = plan_text(WORKSPACE, &PlanOptions::default(), &target).unwrap();
    // The streamed bytes, checked against serde_json's own pretty printing of their value.
    let streamed_value = |plan: &Plan| {
        let mut streamed = Vec::new();
        super::write_json(
            plan,
            &target,
            std::path::Path::new("uv.lock"),
            &mut streamed,
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&streamed).unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
        value
    };
    let value = streamed_value(&plan);
    assert_eq!(
        value["distributions"][2]["required_by"],
        serde_json::json!(["app", "web"])
    );
    streamed_value(&Plan {
        distributions: Vec::new(),
    });
}
