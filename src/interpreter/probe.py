# akpkg's interpreter probe: prints one JSON object describing this interpreter.
# Run with `-I -S` so neither the environment nor site-packages can change the answer.
import json
import os
import platform
import struct
import sys
import sysconfig


def full_version(info):
    # PEP 508's `implementation_version`: "3.13.0", or "3.14.0a2" for pre-releases.
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version


def libc():
    # glibc answers confstr; musl does not, but its loader prints "Version x.y.z".
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        if name == "glibc":
            return {"kind": "glibc", "version": version}
    except (AttributeError, OSError, ValueError):
        pass
    import glob
    import subprocess

    for loader in sorted(glob.glob("/lib/ld-musl-*.so.1")):
        try:
            output = subprocess.run([loader], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        except OSError:
            continue
        for line in output.stderr.decode(errors="replace").splitlines():
            if line.startswith("Version "):
                return {"kind": "musl", "version": line.split()[1]}
    return None


def scheme():
    # Where an installer puts each kind of file, relative to an environment's prefix: the
    # interpreter's own `venv` scheme (3.11+), else `posix_prefix`, with every base set to a
    # placeholder that the caller strips.
    name = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"
    base = "/@prefix@"
    variables = {"base": base, "platbase": base, "installed_base": base, "installed_platbase": base}
    paths = sysconfig.get_paths(scheme=name, vars=variables)
    return {key: os.path.relpath(paths[key], base) for key in ("purelib", "platlib", "scripts", "data")}


print(
    json.dumps(
        {
            "markers": {
                "implementation_name": sys.implementation.name,
                "implementation_version": full_version(sys.implementation.version),
                "os_name": os.name,
                "platform_machine": platform.machine(),
                "platform_python_implementation": platform.python_implementation(),
                "platform_release": platform.release(),
                "platform_system": platform.system(),
                "platform_version": platform.version(),
                "python_full_version": platform.python_version(),
                "python_version": ".".join(platform.python_version_tuple()[:2]),
                "sys_platform": sys.platform,
            },
            "executable": sys.executable,
            "base_executable": getattr(sys, "_base_executable", sys.executable),
            "scheme": scheme(),
            "prefix": sys.prefix,
            "base_prefix": sys.base_prefix,
            "version": list(sys.version_info[:3]),
            "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
            "pointer_bits": struct.calcsize("P") * 8,
            "libc": libc(),
        }
    )
)
