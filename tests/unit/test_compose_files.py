"""The repository's own files in a compose file (compose/repofiles.py, mounts.py, envfile.py,
environment_files.py): bind mounts, secrets, configs and env_file read through a fake read_file,
each path kept inside the repository, each refusal naming the service, the key and the reason."""
import pytest

from deployments.compose.envfile import EnvFileError, parse_env_file
from deployments.compose.file import load
from deployments.compose.project import ComposeError
from deployments.compose.rules import read_services

REPO = {"nginx.conf": b"server {}", "conf/app.env": b"A=1\nB=from file\n", "conf/secret.txt": b"s3cret",
        "deploy/local.conf": b"local", "init.sql": b"create table t (id int);", "site": None, "site/index.html": b"hi"}


def fake_read_file(files: dict):
    """As git/repo_files.py answers: bytes, FileNotFoundError, LookupError, IsADirectoryError(tree)."""
    asked = []

    def read_file(path: str) -> bytes:
        asked.append(path)
        if path == "leaving-link":
            raise LookupError("'leaving-link' is a symlink to '/etc/passwd', outside the repository")
        if path not in files:
            raise FileNotFoundError(f"there is no {path!r} in commit abc")
        if files[path] is None:
            raise IsADirectoryError(f"tree-of-{path}")
        return files[path]
    read_file.asked = asked
    return read_file


def web(text: str, files: dict = REPO, environment: dict | None = None, compose_file: str = "compose.yaml"):
    return load(text, "web", environment or {}, read_file=fake_read_file(files), compose_file=compose_file).web


def problems(text: str, files: dict = REPO, environment: dict | None = None, compose_file: str = "compose.yaml"):
    with pytest.raises(ComposeError) as refused:
        load(text, "web", environment or {}, read_file=fake_read_file(files), compose_file=compose_file)
    return refused.value.problems


def test_a_bind_mounted_file_is_a_read_only_copy_of_the_repositorys_file_with_its_content_hashed():
    spec = web("services: {web: {build: ., volumes: ['./nginx.conf:/etc/nginx/conf.d/default.conf']}}")
    (mount,) = spec.files
    assert (mount.target, mount.path, mount.content, mount.directory) == (
        "/etc/nginx/conf.d/default.conf", "nginx.conf", b"server {}", False)
    assert not mount.asked_writable and spec.volumes == ()


def test_a_directory_is_mounted_by_its_tree_and_rw_is_noted_but_mounted_read_only():
    (mount,) = web("services: {web: {build: ., volumes: ['./site:/var/www/html:rw']}}").files
    assert (mount.directory, mount.digest, mount.asked_writable) == (True, "tree-of-site", True)
    (long,) = web("services: {web: {build: ., volumes: [{type: bind, source: ./site, target: /srv, "
                  "read_only: false}]}}").files
    assert long.directory and long.asked_writable and long.target == "/srv"


def test_paths_are_relative_to_the_compose_files_directory():
    spec = web("services: {web: {build: ., volumes: ['./local.conf:/a', '../nginx.conf:/b']}}",
               compose_file="deploy/compose.yaml")
    assert [mount.path for mount in spec.files] == ["deploy/local.conf", "nginx.conf"]


@pytest.mark.parametrize("volume, reason", [
    ("/etc:/etc", "services.web.volumes: '/etc': an absolute path: only files of the repository are mounted"),
    ("~/.ssh:/root/.ssh", "services.web.volumes: '~/.ssh': a home directory: only files of the repository"),
    ("../../etc/passwd:/p", "services.web.volumes: '../../etc/passwd': it leaves the repository"),
    ("./../x:/x", "services.web.volumes: './../x': it leaves the repository"),
    ("/var/run/docker.sock:/var/run/docker.sock", "services.web.volumes: '/var/run/docker.sock': the Docker socket"),
    ("./docker.sock:/s", "services.web.volumes: './docker.sock': the Docker socket"),
    ("./missing.conf:/m", "services.web.volumes: './missing.conf': there is no 'missing.conf' in commit abc"),
    ("./leaving-link:/l", "services.web.volumes: './leaving-link': 'leaving-link' is a symlink to '/etc/passwd'"),
    ("./nginx.conf:etc/x", "services.web.volumes: 'etc/x': the target must be an absolute path"),
    ("./nginx.conf:/x:shared", "services.web.volumes: './nginx.conf:/x:shared': the mode may be ro or rw"),
    (":/x", "services.web.volumes: ':/x': nothing before ':'"),
])
def test_what_is_not_a_file_of_the_repository_is_refused_with_the_reason(volume, reason):
    found = problems(f"services: {{web: {{build: ., volumes: ['{volume}']}}}}")
    assert any(problem.startswith(reason) for problem in found), found


def test_a_long_bind_to_the_host_is_refused_too():
    found = problems("services: {web: {build: ., volumes: [{type: bind, source: /, target: /host}]}}")
    assert found[0].startswith("services.web.volumes: '/': an absolute path")
    assert problems("services: {web: {build: ., volumes: [{type: bind, target: /x}]}}") == [
        "services.web.volumes: '/x': a bind mount needs a source (./path in the repository)"]


def test_an_anonymous_volume_is_a_scratch_volume_and_does_not_make_a_service_stateful():
    project = load("services: {web: {build: .}, worker: {build: ., volumes: ['/app/node_modules', "
                   "{type: volume, target: /cache}]}}", "web", {}, read_file=fake_read_file(REPO))
    worker = project.service("worker")
    assert worker.anonymous_volumes == ("/app/node_modules", "/cache") and worker.role.value == "worker"


def test_a_changed_file_changes_the_definition_and_an_unchanged_one_does_not():
    text = "services: {web: {build: .}, db: {build: ., volumes: ['./init.sql:/docker-entrypoint-initdb.d/i.sql']}}"
    first = load(text, "web", {}, read_file=fake_read_file(REPO)).service("db").definition()
    assert load(text, "web", {}, read_file=fake_read_file(dict(REPO))).service("db").definition() == first
    changed = {**REPO, "init.sql": b"create table u (id int);"}
    assert load(text, "web", {}, read_file=fake_read_file(changed)).service("db").definition() != first


def test_secrets_go_to_run_secrets_and_configs_to_the_root_or_their_target():
    spec = web("""
services:
  web:
    build: .
    secrets: [db, {source: api, target: api_key, uid: "33", gid: "33", mode: 0400}]
    configs: [nginx, {source: nginx, target: /etc/nginx/nginx.conf}]
secrets:
  db: {file: ./conf/secret.txt}
  api: {file: conf/secret.txt}
configs:
  nginx: {file: ./nginx.conf}
""")
    shown = [(m.target, m.content, m.mode, m.uid, m.gid) for m in spec.files]
    assert shown == [("/run/secrets/db", b"s3cret", 0o444, 0, 0), ("/run/secrets/api_key", b"s3cret", 0o400, 33, 33),
                     ("/nginx", b"server {}", 0o444, 0, 0), ("/etc/nginx/nginx.conf", b"server {}", 0o444, 0, 0)]


def _read(document: dict, environment: dict | None = None):
    """Past the schema (whose bundled version predates `environment:` and `content:`)."""
    from deployments.compose.repofiles import RepoFiles
    return read_services(document, web_service="web", default_replicas=1, environment=environment or {},
                         files=RepoFiles(fake_read_file(REPO)))


def test_a_secret_from_an_app_variable_and_a_config_written_out():
    project = _read({"services": {"web": {"build": ".", "secrets": ["token"], "configs": ["motd"]}},
                     "secrets": {"token": {"environment": "API_TOKEN"}}, "configs": {"motd": {"content": "hello"}}},
                    {"API_TOKEN": "t-1"})
    assert [(m.target, m.content) for m in project.web.files] == [("/run/secrets/token", b"t-1"), ("/motd", b"hello")]


@pytest.mark.parametrize("document, reason", [
    ({"secrets": {"s": {"external": True}}}, "secrets.s.external: not supported: there is no swarm"),
    ({"secrets": {"s": {"environment": "NOPE"}}}, "secrets.s.environment: 'NOPE' is not one of the app's"),
    ({"secrets": {"s": {"content": "x"}}}, "secrets.s: give exactly one of file:"),
    ({"configs": {"c": {"file": "/etc/shadow"}}}, "configs.c.file: '/etc/shadow': an absolute path"),
    ({"configs": {"c": {"file": "./missing"}}}, "configs.c.file: './missing': there is no 'missing'"),
    ({"configs": {"c": {"file": "./x", "driver": "vault"}}}, "configs.c.driver: not supported"),
    ({"services": {"web": {"build": ".", "secrets": ["undeclared"]}}},
     "services.web.secrets: 'undeclared' is not declared under the top-level secrets:"),
    ({"services": {"web": {"build": ".", "secrets": [{"source": "s", "uid": "www-data"}]}},
      "secrets": {"s": {"file": "conf/secret.txt"}}}, "services.web.secrets: s: uid 'www-data' must be a number"),
])
def test_secrets_and_configs_that_cannot_be_read_are_refused_by_name(document, reason):
    document = {"services": {"web": {"build": "."}}, **document}
    with pytest.raises(ComposeError) as refused:
        _read(document)
    assert any(problem.startswith(reason) for problem in refused.value.problems), refused.value.problems


def test_env_files_come_first_then_environment_on_top():
    spec = web("services: {web: {build: ., env_file: [conf/app.env], environment: [B=from environment, C]}}",
               environment={"C": "app's"})
    assert dict(spec.environment) == {"A": "1", "B": "from environment", "C": "app's"}


def test_an_env_file_may_be_missing_only_when_not_required():
    assert problems("services: {web: {build: ., env_file: .env}}") == [
        "services.web.env_file: '.env': there is no '.env' in commit abc (or give it as {path: .env, required: false})"]
    spec = _read({"services": {"web": {"build": ".", "env_file": [{"path": ".env", "required": False},
                                                                   {"path": "conf/app.env"}]}}}).web
    assert dict(spec.environment) == {"A": "1", "B": "from file"}
    assert problems("services: {web: {build: ., env_file: /etc/environment}}")[0].startswith(
        "services.web.env_file: '/etc/environment': an absolute path")


def test_the_env_file_format_as_compose_reads_it():
    text = """# a comment
export A=1
B = two words   # a comment
C='single $A # not a comment'
D="double ${A}\\n\\"quoted\\""
E="spans
lines"
F=
G
H=${A}-${MISSING:-default}
"""
    assert parse_env_file(text, {"G": "from the app"}) == {
        "A": "1", "B": "two words", "C": "single $A # not a comment", "D": 'double 1\n"quoted"', "E": "spans\nlines",
        "F": "", "G": "from the app", "H": "1-default"}
    with pytest.raises(EnvFileError, match="line 1: 'not a pair here' is not KEY=VALUE"):
        parse_env_file("not a pair here", {})
    with pytest.raises(EnvFileError, match="line 1: the \" quote is not closed"):
        parse_env_file('A="open', {})


def test_without_read_file_the_files_are_taken_as_empty_and_the_rest_is_still_checked():
    project = load("services: {web: {build: ., volumes: ['./nginx.conf:/x'], env_file: .env}}", "web", {})
    assert project.web.files[0].target == "/x"


def test_the_files_read_are_bounded_in_all():
    big = {f"f{i}": b"x" * (4 * 1024 * 1024) for i in range(5)}
    volumes = ", ".join(f"'./f{i}:/f{i}'" for i in range(5))
    found = problems(f"services: {{web: {{build: ., volumes: [{volumes}]}}}}", files=big)
    assert any("more than 16 MiB in all" in problem for problem in found), found


# extends and include -------------------------------------------------------------------------------

BASE = b"""
services:
  base:
    build: ./app
    environment: [A=1, B=base]
    volumes: ['./base.conf:/etc/base.conf']
    command: [serve, --base]
    labels: {tier: base}
"""


def test_extends_merges_a_service_of_the_same_file_under_composes_rules():
    spec = web("""
services:
  common:
    build: .
    environment: {A: "1", B: common}
    command: [serve, --common]
    volumes: ['./nginx.conf:/etc/nginx.conf', 'data:/data']
  web:
    extends: common
    environment: [B=web]
    command: [serve, --web]
    volumes: ['./init.sql:/etc/nginx.conf']
volumes: {data: {}}
""")
    assert dict(spec.environment) == {"A": "1", "B": "web"} and spec.command == ("serve", "--web")
    assert [(m.path, m.target) for m in spec.files] == [("init.sql", "/etc/nginx.conf")]
    assert [v.volume for v in spec.volumes] == ["data"]


def test_extends_from_another_file_keeps_that_files_paths_and_its_own_extends():
    files = {**REPO, "common/base.yaml": BASE + b"""
  middle:
    extends: base
    environment: [C=middle]
""", "common/base.conf": b"base conf"}
    spec = web("services: {web: {extends: {file: common/base.yaml, service: middle}, labels: {tier: web}}}",
               files=files)
    assert spec.build_context == "common/app" and dict(spec.environment) == {"A": "1", "B": "base", "C": "middle"}
    assert [(m.path, m.content) for m in spec.files] == [("common/base.conf", b"base conf")]
    assert dict(spec.labels) == {"tier": "web"} and spec.command == ("serve", "--base")


@pytest.mark.parametrize("text, files, reason", [
    ("services: {web: {extends: web, build: .}}", REPO, "services.web.extends: the services extend each other"),
    ("services: {web: {extends: a, build: .}, a: {extends: web, build: .}}", REPO,
     "services.web.extends: the services extend each other"),
    ("services: {web: {extends: nothing}}", REPO, "services.web.extends: there is no service 'nothing' in compose.yaml"),
    ("services: {web: {extends: {file: /etc/compose.yaml, service: x}}}", REPO,
     "services.web.extends.file: '/etc/compose.yaml': an absolute path"),
    ("services: {web: {extends: {file: missing.yaml, service: x}}}", REPO,
     "services.web.extends.file: there is no 'missing.yaml'"),
    ("services: {web: {extends: {file: nginx.conf, service: x}}}", REPO,
     "services.web.extends.file: nginx.conf: the compose file must be a mapping"),
    ("services: {web: {extends: {file: loop.yaml, service: a}}}",
     {"loop.yaml": b"services: {a: {extends: {file: loop.yaml, service: a}}}"},
     "services.a.extends (in loop.yaml): the services extend each other"),
])
def test_extends_that_cannot_be_followed_is_refused(text, files, reason):
    found = problems(text, files=files)
    assert any(problem.startswith(reason) for problem in found), found


def test_include_adds_the_services_of_another_file_with_its_paths_relative_to_it():
    files = {**REPO, "db/compose.yaml": b"""
services:
  db:
    build: .
    volumes: ['./init.sql:/docker-entrypoint-initdb.d/init.sql', 'data:/var/lib/data']
    env_file: db.env
volumes: {data: {}}
""", "db/init.sql": b"create table db;", "db/db.env": b"PGUSER=app"}
    project = load("include: [db/compose.yaml]\nservices: {web: {build: ., depends_on: [db]}}", "web", {},
                   read_file=fake_read_file(files))
    db = project.service("db")
    assert db.build_context == "db" and [m.path for m in db.files] == ["db/init.sql"]
    assert dict(db.environment) == {"PGUSER": "app"} and project.volumes == ("data",)


def test_include_with_several_paths_merges_them_in_order():
    files = {"a.yaml": b"services: {web: {build: ., environment: [A=a, B=a]}}",
             "b.yaml": b"services: {web: {environment: [B=b]}}"}
    spec = load("include: [{path: [a.yaml, b.yaml]}]\nservices: {}", "web", {}, read_file=fake_read_file(files)).web
    assert dict(spec.environment) == {"A": "a", "B": "b"}


@pytest.mark.parametrize("text, files, reason", [
    ("include: [self.yaml]\nservices: {web: {build: .}}", {"self.yaml": b"include: [self.yaml]\nservices: {}"},
     "include[0]: 'self.yaml': the files include each other (compose.yaml → self.yaml → self.yaml)"),
    ("include: [other.yaml]\nservices: {web: {build: .}}", {"other.yaml": b"services: {web: {build: ./other}}"},
     "include[0]: services.web is defined both here and in the included file"),
    ("include: [{path: x.yaml, env_file: x.env}]\nservices: {web: {build: .}}", {},
     "include[0].env_file: not supported: an included file's variables are the app's environment variables"),
    ("include: [{path: x.yaml, project_directory: ..}]\nservices: {web: {build: .}}", {},
     "include[0].project_directory: not supported"),
    ("include: [../outside.yaml]\nservices: {web: {build: .}}", {}, "include[0]: '../outside.yaml': it leaves"),
    ("include: [missing.yaml]\nservices: {web: {build: .}}", {}, "include[0]: 'missing.yaml': there is no"),
    ("include: 5\nservices: {web: {build: .}}", {}, "include: a path (or a list of paths)"),
])
def test_include_that_cannot_be_followed_is_refused(text, files, reason):
    found = problems(text, files=files)
    assert any(problem.startswith(reason) for problem in found), found


def test_include_is_bounded_in_depth():
    files = {f"f{i}.yaml": f"include: [f{i + 1}.yaml]\nservices: {{}}".encode() for i in range(10)}
    found = problems("include: [f0.yaml]\nservices: {web: {build: .}}", files=files)
    assert any("included more than 5 files deep" in problem for problem in found), found


def test_two_mounts_at_one_target_are_refused():
    found = problems("services: {web: {build: ., volumes: ['./nginx.conf:/run/secrets/s'], secrets: [s]}}\n"
                     "secrets: {s: {file: conf/secret.txt}}")
    assert found == ["services.web: '/run/secrets/s' is mounted more than once (volumes, secrets and configs together)"]
