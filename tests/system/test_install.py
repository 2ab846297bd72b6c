"""`make install` (cmake --install): the proxy, `sluice`, a systemd unit naming the installed binary,
and an example configuration that passes `--check`; the installed proxy serves clients."""
import json
import os
import shutil
import subprocess

from sluice_harness import harness


def install(build, prefix):
    r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_install_lays_out_binaries_unit_and_example(tmp_path, proxy_binary, pg, app):
    build = os.path.dirname(proxy_binary)
    prefix = str(tmp_path / "prefix")
    install(build, prefix)
    installed = os.path.join(prefix, "bin", "sluice-proxy")
    assert os.access(installed, os.X_OK)
    unit_path = os.path.join(prefix, "lib", "systemd", "system", "sluice-proxy.service")
    unit = open(unit_path).read()
    assert f"ExecStart={installed} --config /etc/sluice/proxy.toml" in unit
    assert "KillSignal=SIGTERM" in unit and "NoNewPrivileges=yes" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit  # systemctl reload: SIGHUP
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", unit_path], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr

    # The example configuration is valid once its secret file exists.
    example = os.path.join(prefix, "share", "doc", "sluice", "proxy.example.toml")
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    shutil.copy(example, conf_dir / "proxy.toml")
    (conf_dir / "app-secret.json").write_text(json.dumps({"username": "app", "password": "pw"}))
    r = subprocess.run([installed, "--check", "--config", str(conf_dir / "proxy.toml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    # The installed binary is the proxy: a client gets through it.
    proxy = harness.Proxy(installed, pg.port, users=[(app.app_user, app.app_password)])
    try:
        proxy.start()
        with proxy.connect(app.app_user, app.app_password) as c:
            assert c.execute("select 41 + 1").fetchone() == (42,)
    finally:
        proxy.stop()
        proxy.cleanup()
