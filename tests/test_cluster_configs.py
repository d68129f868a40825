"""The cluster-launcher YAMLs and the KubeRay manifest in cluster/, checked without starting Ray.

Each launcher YAML goes through Ray's own `prepare_config` + `validate_config` (ray-schema.json,
the code path of `ray up`); then the properties the sweeps rely on are checked: node types and
their resources, scale-to-zero GPU workers, the driver-only resource on the head, the project
installed at the Ray version pinned in pyproject.toml, token auth, no credentials, nothing bound
to a public interface. The shell snippets that write the head's environment and start MLflow are
run / parsed for real.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
LAUNCHER_YAMLS = ["cluster.yaml", "gcp.yaml", "local.yaml"]
CLOUD_YAMLS = ["cluster.yaml", "gcp.yaml"]  # the ones that declare node types
DRIVER_RESOURCE = "tl_driver"


def pinned_ray_version() -> str:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [re.fullmatch(r"ray(\[[^\]]*\])?==([\w.]+)", d.replace(" ", "")) for d in dependencies]
    versions = [m.group(2) for m in pins if m]
    assert len(versions) == 1, f"pyproject.toml must pin ray exactly once, found {dependencies}"
    return versions[0]


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def prepared(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(load(name)))
    validate_config(config)
    return config


def all_commands(config: dict) -> list[str]:
    keys = ["initialization_commands", "setup_commands", "head_setup_commands",
            "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands"]
    commands = [c for key in keys for c in config.get(key, [])]
    for node_type in config.get("available_node_types", {}).values():
        commands += node_type.get("initialization_commands", [])
    return commands


def is_spot(node_config: dict) -> bool:
    aws = node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    gcp = any(s.get("preemptible") or s.get("provisioningModel") == "SPOT"
              for s in node_config.get("scheduling", []))
    return aws or gcp


# --- Ray's own validator --------------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_ray_validator_accepts_config(name):
    config = prepared(name)
    assert config["head_node_type"] in config["available_node_types"]


def test_ray_validator_rejects_broken_configs():
    """The validator used above really checks: typical mistakes in our files are refused."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    fractional = load("cluster.yaml")
    fractional["available_node_types"]["gpu_1x"]["resources"]["GPU"] = 0.5
    unknown_key = load("cluster.yaml")
    unknown_key["available_node_types"]["gpu_1x"]["min_worker"] = 0
    unquoted = yaml.safe_load("head_start_ray_commands:\n  - ray start --resources='{\"a\": 1}'\n")
    colon_in_command = {**load("local.yaml"), **unquoted}
    for broken in (fractional, unknown_key, colon_in_command):
        with pytest.raises(Exception, match="is not|Additional properties"):
            validate_config(prepare_config(broken))


# --- node types: scale to zero, driver resource on the head only ----------------------------


@pytest.mark.parametrize("name", CLOUD_YAMLS)
def test_node_types_scale_gpu_workers_from_zero(name):
    config = prepared(name)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = {k: v for k, v in types.items() if k != config["head_node_type"]}
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0
    assert head["resources"][DRIVER_RESOURCE] >= 1
    gpus = sorted(w["resources"].get("GPU", 0) for w in workers.values())
    assert gpus[0] == 0, "a CPU-only type, so CPU-only work never starts GPU nodes"
    assert 1 in gpus and gpus[-1] > 1, "one single-GPU and one multi-GPU worker type"
    for worker_name, worker in workers.items():
        assert worker["min_workers"] == 0, f"{worker_name}: an idle cluster must cost only the head"
        assert 1 <= worker["max_workers"] <= config["max_workers"], worker_name
        assert DRIVER_RESOURCE not in worker["resources"], f"{worker_name}: drivers stay on the head"
        assert worker["resources"]["CPU"] >= max(1, worker["resources"].get("GPU", 0)), worker_name
    assert any(is_spot(w["node_config"]) for w in workers.values()), "an optional spot type"
    assert not is_spot(head["node_config"])
    assert config["max_workers"] >= max(w["max_workers"] for w in workers.values())
    assert 1 <= config["idle_timeout_minutes"] <= 60


def test_local_head_declares_driver_resource():
    config = prepared("local.yaml")
    head_start = " ".join(config["head_start_ray_commands"])
    match = re.search(r"--resources='(\{.*?\})'", head_start)
    assert match and yaml.safe_load(match.group(1)) == {DRIVER_RESOURCE: 8}
    assert DRIVER_RESOURCE not in " ".join(config["worker_start_ray_commands"])
    workers = config["available_node_types"]["local.cluster.node"]
    assert workers["min_workers"] == 0
    assert workers["max_workers"] == len(config["provider"]["worker_ips"])


# --- the project and Ray at the pinned version on every node --------------------------------


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_every_node_installs_the_project_at_the_pinned_ray(name):
    config = prepared(name)
    version = pinned_ray_version()
    assert Path(config["file_mounts"]["~/tl"]) == Path("."), "the repository root, as run from there"
    for key in ("head_setup_commands", "worker_setup_commands"):  # setup_commands merged into both
        commands = " ; ".join(config[key])
        assert re.search(r"pip install -e ~/tl\b", commands), (name, key)
        assert f"ray.__version__ == '{version}'" in commands, (name, key)
    if "docker" in load(name):
        image = config["docker"]["image"]
        python = re.search(r"py3(\d+)", image).group(1)
        assert image.startswith(f"rayproject/ray:{version}-"), image
        assert 10 <= int(python) <= 12, "pyproject.toml requires Python >=3.10,<3.13"


def test_dockerfile_and_kuberay_use_the_pinned_ray():
    version = pinned_ray_version()
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert re.search(rf"^FROM rayproject/ray:{re.escape(version)}-py31[0-2]", dockerfile, re.M)
    assert re.search(r"pip install .*-e /home/ray/tl", dockerfile)
    cluster = kuberay_objects()["RayCluster"]
    assert cluster["spec"]["rayVersion"] == version


# --- security: token auth, no credentials, nothing on a public interface --------------------


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_ray_token_auth_on_every_node(name):
    config = prepared(name)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
              if "ray start" in c]
    assert len(starts) == 2
    assert all(re.search(r"RAY_AUTH_MODE=token;.*ray start", c) for c in starts), starts


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_nothing_listens_on_a_public_interface(name):
    config = prepared(name)
    commands = " ; ".join(all_commands(config))
    assert "0.0.0.0" not in commands and "--dashboard-host" not in commands
    assert "security_group" not in config["provider"], "keep Ray's SSH-only security group"


CREDENTIAL_PATTERNS = [
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"(?i)aws_secret_access_key|aws_session_token|aws_credentials|gcp_credentials",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"(?i)password\s*[:=]",
    r"\"private_key\"",
]


@pytest.mark.parametrize("name", sorted(p.name for p in CLUSTER.iterdir() if p.is_file()))
def test_no_credentials_in_cluster_files(name):
    text = (CLUSTER / name).read_text()
    for pattern in CREDENTIAL_PATTERNS:
        assert not re.search(pattern, text), f"cluster/{name} matches {pattern}"
    if name.endswith(".yaml") and name != "kuberay.yaml":
        key = load(name).get("auth", {}).get("ssh_private_key")
        assert key is None or key.startswith(("~", "/")), "a path to a key, never the key"


def test_credential_scan_finds_planted_secrets():
    planted = "aws_secret_access_key: x\nkey: AKIAABCDEFGHIJKLMNOP\n-----BEGIN RSA PRIVATE KEY-----"
    assert sum(bool(re.search(p, planted)) for p in CREDENTIAL_PATTERNS) == 3


# --- the head's environment and its MLflow server, run and parsed for real ------------------


def head_env_command(config: dict) -> str:
    return next(c for c in config["head_setup_commands"] if "~/.tl_env" in c)


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_head_environment_names_storage_tracking_and_driver(name, tmp_path):
    config = prepared(name)
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    subprocess.run(["bash", "-c", head_env_command(config)], env=env, check=True)
    subprocess.run(["bash", "-c", head_env_command(config)], env=env, check=True)  # rerun: idempotent
    shown = subprocess.run(["bash", "-c", "source ~/.tl_env && env"], env=env, check=True,
                           capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    bucket = values.get("TL_BUCKET") or values["TL_SHARED"]
    assert values["TL_STORAGE"] == f"{bucket}/ray-results"
    assert values["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"  # the server below
    assert values["TL_DRIVER_RESOURCE"] == DRIVER_RESOURCE
    assert values["RAY_AUTH_MODE"] == "token"
    assert (tmp_path / ".bashrc").read_text().count("source ~/.tl_env") == 1


def mlflow_server_args(command: str, bucket: str) -> list[str]:
    """The argv of `mlflow server` in a head start command, with its shell values filled in."""
    command = command.replace("$HOME", "/home/ray").replace("$TL_BUCKET", bucket)
    command = command.replace("$TL_SHARED", bucket)
    words = shlex.split(command.split("mlflow server", 1)[1].split(">", 1)[0])
    return words


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_mlflow_server_command_is_valid_and_private(name):
    from mlflow.cli import server

    config = prepared(name)
    start = next(c for c in config["head_start_ray_commands"] if "mlflow server" in c)
    bucket = "s3://bucket" if name == "cluster.yaml" else "gs://bucket" if name == "gcp.yaml" else "/nfs"
    params = server.make_context("server", mlflow_server_args(start, bucket)).params
    assert params["host"] == "127.0.0.1", "reached through `ray attach ... -p 5000` only"
    assert params["port"] == 5000
    assert params["backend_store_uri"] == "sqlite:////home/ray/mlflow/mlflow.db"
    assert params["artifacts_destination"] == f"{bucket}/mlflow-artifacts"
    assert params["serve_artifacts"] is True
    assert "echo $! > ~/mlflow/server.pid" in start and "setsid" in start


# --- KubeRay: fields of the RayCluster / RayJob CRDs ----------------------------------------

# Field names of ray.io/v1 RayClusterSpec, HeadGroupSpec, WorkerGroupSpec, AutoscalerOptions and
# RayJobSpec, from ray-project/kuberay ray-operator/apis/ray/v1/{raycluster,rayjob}_types.go.
RAYCLUSTER_SPEC = {"upgradeStrategy", "authOptions", "suspend", "managedBy", "autoscalerOptions",
                   "headServiceAnnotations", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
                   "historyServerOptions", "networkPolicy", "tlsOptions", "headGroupSpec",
                   "rayVersion", "workerGroupSpecs"}
HEAD_GROUP = {"template", "headService", "enableIngress", "rayStartParams", "serviceType"}
WORKER_GROUP = {"suspend", "groupName", "replicas", "minReplicas", "maxReplicas",
                "idleTimeoutSeconds", "rayStartParams", "template", "scaleStrategy", "numOfHosts"}
AUTOSCALER_OPTIONS = {"resources", "image", "imagePullPolicy", "securityContext",
                      "idleTimeoutSeconds", "upscalingMode", "env", "envFrom", "volumeMounts"}
RAYJOB_SPEC = {"activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate",
               "metadata", "clusterSelector", "submitterConfig", "managedBy", "deletionPolicy",
               "entrypoint", "runtimeEnvYAML", "jobId", "submissionMode", "entrypointResources",
               "entrypointNumCpus", "entrypointNumGpus", "ttlSecondsAfterFinished",
               "shutdownAfterJobFinishes", "suspend"}


def kuberay_objects() -> dict[str, dict]:
    documents = list(yaml.safe_load_all((CLUSTER / "kuberay.yaml").read_text()))
    return {d["kind"]: d for d in documents}


def test_kuberay_fields_match_the_crds():
    objects = kuberay_objects()
    cluster, job = objects["RayCluster"], objects["RayJob"]
    assert cluster["apiVersion"] == job["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert set(spec) <= RAYCLUSTER_SPEC
    assert set(spec["autoscalerOptions"]) <= AUTOSCALER_OPTIONS
    assert {"template", "rayStartParams"} <= set(spec["headGroupSpec"]) <= HEAD_GROUP
    for group in spec["workerGroupSpecs"]:
        required = {"groupName", "minReplicas", "maxReplicas", "rayStartParams", "template"}
        assert required <= set(group) <= WORKER_GROUP, group["groupName"]
    assert set(job["spec"]) <= RAYJOB_SPEC
    assert job["spec"]["submissionMode"] in {"K8sJobMode", "HTTPMode", "InteractiveMode"}
    assert job["spec"]["clusterSelector"].items() <= cluster["metadata"]["labels"].items()


def test_kuberay_autoscaling_and_driver_placement():
    spec = kuberay_objects()["RayCluster"]["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert 60 <= spec["autoscalerOptions"]["idleTimeoutSeconds"] <= 3600
    head_params = spec["headGroupSpec"]["rayStartParams"]
    assert yaml.safe_load(yaml.safe_load(head_params["resources"])) == {DRIVER_RESOURCE: 8}
    gpus = []
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] == 0 and group["maxReplicas"] >= 1
        assert "resources" not in group["rayStartParams"]
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]
        gpus.append(int(limits["nvidia.com/gpu"]))
    assert min(gpus) == 1 and max(gpus) > 1


def test_kuberay_security_and_shared_state():
    objects = kuberay_objects()
    spec = objects["RayCluster"]["spec"]
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP" and not head.get("enableIngress")
    text = (CLUSTER / "kuberay.yaml").read_text()
    assert "LoadBalancer" not in text and "NodePort" not in text and "0.0.0.0" not in text
    images = {c["image"] for g in [head] + spec["workerGroupSpecs"]
              for c in g["template"]["spec"]["containers"]}
    assert len(images) == 1, "one image (cluster/Dockerfile) on every pod"
    (mlflow,) = [c for c in head["template"]["spec"]["containers"] if c["name"] == "mlflow"]
    from mlflow.cli import server

    params = server.make_context("server", mlflow["command"][2:]).params
    assert params["host"] == "127.0.0.1"
    assert params["backend_store_uri"].startswith("sqlite:////home/ray/mlflow/")
    assert params["serve_artifacts"] and params["artifacts_destination"].startswith("s3://")
    mounts = {m["mountPath"]: m["name"] for m in mlflow["volumeMounts"]}
    volumes = {v["name"]: v for v in head["template"]["spec"]["volumes"]}
    claim = volumes[mounts["/home/ray/mlflow"]]["persistentVolumeClaim"]["claimName"]
    assert claim == objects["PersistentVolumeClaim"]["metadata"]["name"]
    env = {e["name"]: e for e in head["template"]["spec"]["containers"][0]["env"]}
    assert env["TL_DRIVER_RESOURCE"]["value"] == DRIVER_RESOURCE
    assert env["MLFLOW_TRACKING_URI"]["value"] == f"http://127.0.0.1:{params['port']}"
    entrypoint = objects["RayJob"]["spec"]["entrypoint"]
    assert "--storage " + env["TL_STORAGE"]["value"] in entrypoint
    assert "--tracking-uri " + env["MLFLOW_TRACKING_URI"]["value"] in entrypoint


# --- data at scale: canonical data sets read from a URI --------------------------------------


def test_read_dataset_through_a_file_uri_matches_the_local_read(tmp_path):
    from toy import make_toy_dataset
    from tl.data import read_dataset, write_dataset

    write_dataset(make_toy_dataset(n_per_class=5), str(tmp_path / "toy"))
    local = read_dataset(str(tmp_path / "toy"))
    remote = read_dataset((tmp_path / "toy").as_uri())
    assert remote.objects.equals(local.objects)
    assert remote.observations.equals(local.observations)
    assert len(remote.objects) == 15
