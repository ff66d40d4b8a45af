//! The compose loader against Docker Compose v2: realistic projects written to a temporary
//! directory, loaded, and compared with what `docker compose config` printed for the same files
//! (captured once with Compose v2.40.3 under `env -i HOME=/home/test`, the project directory
//! replaced by `@DIR@`). The tests do not need the docker binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_compose::loader::{load, to_json, to_yaml, LoadError, LoadOptions};
use serde_json::Value;

fn write_all(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn env() -> BTreeMap<String, String> {
    [("HOME".to_string(), "/home/test".to_string())].into()
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: dir.to_path_buf(),
        environment: env(),
        ..LoadOptions::default()
    }
}

/// A project directory named `name` inside a fresh temporary directory.
fn project(name: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    write_all(&dir, files);
    (tmp, dir)
}

fn expected(text: &str, dir: &Path) -> Value {
    serde_json::from_str(&text.replace("@DIR@", &dir.to_string_lossy())).unwrap()
}

fn as_json(model: &Value) -> Value {
    serde_json::from_str(&to_json(model)).unwrap()
}

fn services(model: &Value) -> Vec<String> {
    model["services"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

const STACK: &[(&str, &str)] = &[
    (
        "compose.yaml",
        r#"version: "3.9"
name: shop
x-restart: &restart
  restart: unless-stopped
x-env: &common-env
  TZ: UTC
  LOG_LEVEL: ${LOG_LEVEL:-info}
services:
  web:
    <<: *restart
    build: ./web
    image: shop/web:${TAG:-latest}
    ports:
      - "${WEB_PORT:-8080}:80"
      - "127.0.0.1:9000-9001:9000-9001/udp"
    expose: [3000]
    environment:
      <<: *common-env
      DATABASE_URL: postgres://shop:${DB_PASSWORD:?set DB_PASSWORD}@db:5432/shop
      HOME:
    env_file: web.env
    command: bundle exec puma -C "config/puma.rb"
    volumes:
      - ./web/public:/app/public:ro
      - uploads:/app/uploads
      - ~/cache:/cache
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
    healthcheck:
      test: curl -fs http://localhost/health
      interval: 90s
      timeout: 1500ms
      retries: 3
    extra_hosts:
      - "metrics:10.0.0.9"
    labels:
      - com.example.tier=front
    x-note: kept in YAML only
  db:
    <<: *restart
    image: postgres:16
    environment:
      <<: *common-env
      POSTGRES_PASSWORD: $DB_PASSWORD
      POSTGRES_USER: shop
    volumes:
      - dbdata:/var/lib/postgresql/data
    networks: [back]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "shop"]
      interval: 10s
    stop_grace_period: 1m30s
    shm_size: 256m
    deploy:
      resources:
        limits:
          cpus: "1.5"
          memory: 512M
  cache:
    image: redis:7
    command: ["redis-server", "--save", ""]
    networks:
      back:
        aliases: [redis]
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
    sysctls:
      net.core.somaxconn: 1024
networks:
  back: {}
  unused: {}
volumes:
  dbdata:
  uploads:
    name: shop-uploads
"#,
    ),
    (
        "web.env",
        r#"# web settings
RAILS_ENV=production
export SECRET_KEY_BASE="abc 123"
GREETING=hello ${TZ:-x} # trailing
"#,
    ),
    (
        ".env",
        r#"DB_PASSWORD=s3cret
TAG=1.4.2
"#,
    ),
];

const STACK_JSON: &str = r#"{
  "name": "shop",
  "networks": {
    "back": {
      "name": "shop_back",
      "ipam": {}
    },
    "default": {
      "name": "shop_default",
      "ipam": {}
    }
  },
  "services": {
    "cache": {
      "command": [
        "redis-server",
        "--save",
        ""
      ],
      "entrypoint": null,
      "image": "redis:7",
      "networks": {
        "back": {
          "aliases": [
            "redis"
          ]
        }
      },
      "sysctls": {
        "net.core.somaxconn": "1024"
      },
      "ulimits": {
        "nofile": {
          "soft": 1024,
          "hard": 2048
        }
      }
    },
    "db": {
      "command": null,
      "deploy": {
        "resources": {
          "limits": {
            "cpus": 1.5,
            "memory": "536870912"
          }
        },
        "placement": {}
      },
      "entrypoint": null,
      "environment": {
        "LOG_LEVEL": "info",
        "POSTGRES_PASSWORD": "s3cret",
        "POSTGRES_USER": "shop",
        "TZ": "UTC"
      },
      "healthcheck": {
        "test": [
          "CMD",
          "pg_isready",
          "-U",
          "shop"
        ],
        "interval": "10s"
      },
      "image": "postgres:16",
      "networks": {
        "back": null
      },
      "restart": "unless-stopped",
      "shm_size": "268435456",
      "stop_grace_period": "1m30s",
      "volumes": [
        {
          "type": "volume",
          "source": "dbdata",
          "target": "/var/lib/postgresql/data",
          "volume": {}
        }
      ]
    },
    "web": {
      "build": {
        "context": "@DIR@/web",
        "dockerfile": "Dockerfile"
      },
      "command": [
        "bundle",
        "exec",
        "puma",
        "-C",
        "config/puma.rb"
      ],
      "depends_on": {
        "cache": {
          "condition": "service_started",
          "required": true
        },
        "db": {
          "condition": "service_healthy",
          "required": true
        }
      },
      "entrypoint": null,
      "environment": {
        "DATABASE_URL": "postgres://shop:s3cret@db:5432/shop",
        "GREETING": "hello UTC",
        "HOME": "/home/test",
        "LOG_LEVEL": "info",
        "RAILS_ENV": "production",
        "SECRET_KEY_BASE": "abc 123",
        "TZ": "UTC"
      },
      "expose": [
        "3000"
      ],
      "extra_hosts": [
        "metrics=10.0.0.9"
      ],
      "healthcheck": {
        "test": [
          "CMD-SHELL",
          "curl -fs http://localhost/health"
        ],
        "timeout": "1.5s",
        "interval": "1m30s",
        "retries": 3
      },
      "image": "shop/web:1.4.2",
      "labels": {
        "com.example.tier": "front"
      },
      "networks": {
        "default": null
      },
      "ports": [
        {
          "mode": "ingress",
          "target": 80,
          "published": "8080",
          "protocol": "tcp"
        },
        {
          "mode": "ingress",
          "host_ip": "127.0.0.1",
          "target": 9000,
          "published": "9000",
          "protocol": "udp"
        },
        {
          "mode": "ingress",
          "host_ip": "127.0.0.1",
          "target": 9001,
          "published": "9001",
          "protocol": "udp"
        }
      ],
      "restart": "unless-stopped",
      "volumes": [
        {
          "type": "bind",
          "source": "@DIR@/web/public",
          "target": "/app/public",
          "read_only": true,
          "bind": {
            "create_host_path": true
          }
        },
        {
          "type": "volume",
          "source": "uploads",
          "target": "/app/uploads",
          "volume": {}
        },
        {
          "type": "bind",
          "source": "/home/test/cache",
          "target": "/cache",
          "bind": {
            "create_host_path": true
          }
        }
      ]
    }
  },
  "volumes": {
    "dbdata": {
      "name": "shop_dbdata"
    },
    "uploads": {
      "name": "shop-uploads"
    }
  },
  "x-env": {
    "LOG_LEVEL": "info",
    "TZ": "UTC"
  },
  "x-restart": {
    "restart": "unless-stopped"
  }
}"#;

const STACK_YAML: &str = r#"name: shop
services:
  cache:
    command:
      - redis-server
      - --save
      - ""
    image: redis:7
    networks:
      back:
        aliases:
          - redis
    sysctls:
      net.core.somaxconn: "1024"
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
  db:
    deploy:
      resources:
        limits:
          cpus: 1.5
          memory: "536870912"
    environment:
      LOG_LEVEL: info
      POSTGRES_PASSWORD: s3cret
      POSTGRES_USER: shop
      TZ: UTC
    healthcheck:
      test:
        - CMD
        - pg_isready
        - -U
        - shop
      interval: 10s
    image: postgres:16
    networks:
      back: null
    restart: unless-stopped
    shm_size: "268435456"
    stop_grace_period: 1m30s
    volumes:
      - type: volume
        source: dbdata
        target: /var/lib/postgresql/data
        volume: {}
  web:
    build:
      context: @DIR@/web
      dockerfile: Dockerfile
    command:
      - bundle
      - exec
      - puma
      - -C
      - config/puma.rb
    depends_on:
      cache:
        condition: service_started
        required: true
      db:
        condition: service_healthy
        required: true
    environment:
      DATABASE_URL: postgres://shop:s3cret@db:5432/shop
      GREETING: hello UTC
      HOME: /home/test
      LOG_LEVEL: info
      RAILS_ENV: production
      SECRET_KEY_BASE: abc 123
      TZ: UTC
    expose:
      - "3000"
    extra_hosts:
      - metrics=10.0.0.9
    healthcheck:
      test:
        - CMD-SHELL
        - curl -fs http://localhost/health
      timeout: 1.5s
      interval: 1m30s
      retries: 3
    image: shop/web:1.4.2
    labels:
      com.example.tier: front
    networks:
      default: null
    ports:
      - mode: ingress
        target: 80
        published: "8080"
        protocol: tcp
      - mode: ingress
        host_ip: 127.0.0.1
        target: 9000
        published: "9000"
        protocol: udp
      - mode: ingress
        host_ip: 127.0.0.1
        target: 9001
        published: "9001"
        protocol: udp
    restart: unless-stopped
    volumes:
      - type: bind
        source: @DIR@/web/public
        target: /app/public
        read_only: true
        bind:
          create_host_path: true
      - type: volume
        source: uploads
        target: /app/uploads
        volume: {}
      - type: bind
        source: /home/test/cache
        target: /cache
        bind:
          create_host_path: true
    x-note: kept in YAML only
networks:
  back:
    name: shop_back
  default:
    name: shop_default
volumes:
  dbdata:
    name: shop_dbdata
  uploads:
    name: shop-uploads
x-env:
  LOG_LEVEL: info
  TZ: UTC
x-restart:
  restart: unless-stopped
"#;

const MULTI: &[(&str, &str)] = &[
    (
        "compose.yaml",
        r#"include:
  - lib/compose.yaml
services:
  api:
    extends:
      file: common/base.yaml
      service: base
    image: acme/api
    depends_on: [queue]
    ports: ["8000:8000"]
    environment:
      ROLE: api
  worker:
    extends: api
    command: ["worker", "--concurrency", "4"]
    ports: !reset []
    environment:
      ROLE: worker
"#,
    ),
    (
        "compose.override.yaml",
        r#"services:
  api:
    ports: !override
      - "8443:8443"
    environment:
      DEBUG: "true"
    volumes:
      - ./src:/src
"#,
    ),
    (
        "common/base.yaml",
        r#"services:
  base:
    build: ./ctx
    env_file: base.env
    volumes:
      - ./config:/etc/app:ro
    labels:
      team: platform
"#,
    ),
    (
        "common/base.env",
        r#"FROM_BASE=1
"#,
    ),
    (
        "lib/compose.yaml",
        r#"services:
  queue:
    image: rabbitmq:${RABBIT_TAG}
    volumes:
      - qdata:/var/lib/rabbitmq
      - ./rabbit.conf:/etc/rabbitmq/rabbitmq.conf
volumes:
  qdata:
"#,
    ),
    (
        "lib/.env",
        r#"RABBIT_TAG=3-management
"#,
    ),
];

const MULTI_JSON: &str = r#"{
  "name": "multi",
  "networks": {
    "default": {
      "name": "multi_default",
      "ipam": {}
    }
  },
  "services": {
    "api": {
      "build": {
        "context": "@DIR@/common/ctx",
        "dockerfile": "Dockerfile"
      },
      "command": null,
      "depends_on": {
        "queue": {
          "condition": "service_started",
          "required": true
        }
      },
      "entrypoint": null,
      "environment": {
        "DEBUG": "true",
        "FROM_BASE": "1",
        "ROLE": "api"
      },
      "image": "acme/api",
      "labels": {
        "team": "platform"
      },
      "networks": {
        "default": null
      },
      "ports": [
        {
          "mode": "ingress",
          "target": 8443,
          "published": "8443",
          "protocol": "tcp"
        }
      ],
      "volumes": [
        {
          "type": "bind",
          "source": "@DIR@/common/config",
          "target": "/etc/app",
          "read_only": true,
          "bind": {
            "create_host_path": true
          }
        },
        {
          "type": "bind",
          "source": "@DIR@/src",
          "target": "/src",
          "bind": {
            "create_host_path": true
          }
        }
      ]
    },
    "queue": {
      "command": null,
      "entrypoint": null,
      "image": "rabbitmq:3-management",
      "networks": {
        "default": null
      },
      "volumes": [
        {
          "type": "volume",
          "source": "qdata",
          "target": "/var/lib/rabbitmq",
          "volume": {}
        },
        {
          "type": "bind",
          "source": "@DIR@/lib/rabbit.conf",
          "target": "/etc/rabbitmq/rabbitmq.conf",
          "bind": {
            "create_host_path": true
          }
        }
      ]
    },
    "worker": {
      "build": {
        "context": "@DIR@/common/ctx",
        "dockerfile": "Dockerfile"
      },
      "command": [
        "worker",
        "--concurrency",
        "4"
      ],
      "depends_on": {
        "queue": {
          "condition": "service_started",
          "required": true
        }
      },
      "entrypoint": null,
      "environment": {
        "FROM_BASE": "1",
        "ROLE": "worker"
      },
      "image": "acme/api",
      "labels": {
        "team": "platform"
      },
      "networks": {
        "default": null
      },
      "volumes": [
        {
          "type": "bind",
          "source": "@DIR@/common/config",
          "target": "/etc/app",
          "read_only": true,
          "bind": {
            "create_host_path": true
          }
        }
      ]
    }
  },
  "volumes": {
    "qdata": {
      "name": "multi_qdata"
    }
  }
}"#;

/// web + db + cache: anchors and merge keys, `.env` and `env_file`, interpolation with defaults and
/// a required variable, short port/volume syntaxes, healthchecks, deploy limits, an unused network.
#[test]
fn web_db_cache_stack_matches_compose() {
    let (_tmp, dir) = project("stack", STACK);
    let p = load(&opts(&dir)).unwrap();
    assert_eq!(p.name, "shop");
    assert_eq!(p.working_dir, dir);
    assert_eq!(p.config_files, vec![dir.join("compose.yaml")]);
    assert_eq!(p.environment.get("TAG").map(String::as_str), Some("1.4.2"));
    assert_eq!(as_json(&p.model), expected(STACK_JSON, &dir));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("the attribute `version` is obsolete")),
        "{:?}",
        p.warnings
    );
    // the model keeps a service's x- keys (Compose's YAML prints them, its JSON does not)
    assert_eq!(p.model["services"]["web"]["x-note"], "kept in YAML only");
}

#[test]
fn web_db_cache_stack_prints_yaml_like_compose() {
    let (_tmp, dir) = project("stack", STACK);
    let p = load(&opts(&dir)).unwrap();
    assert_eq!(to_yaml(&p.model), STACK_YAML.replace("@DIR@", &dir.to_string_lossy()));
}

#[test]
fn process_environment_wins_over_dot_env() {
    let (_tmp, dir) = project("stack", STACK);
    let mut o = opts(&dir);
    o.environment.insert("TAG".into(), "9.9".into());
    o.environment.insert("WEB_PORT".into(), "80".into());
    let p = load(&o).unwrap();
    assert_eq!(p.model["services"]["web"]["image"], "shop/web:9.9");
    assert_eq!(p.model["services"]["web"]["ports"][0]["published"], "80");
}

/// An override file with `!reset` and `!override`, `extends` within the file and from another file
/// (its relative paths resolved against that file), and an `include` with its own `.env`.
#[test]
fn overrides_extends_and_include_match_compose() {
    let (_tmp, dir) = project("multi", MULTI);
    let p = load(&opts(&dir)).unwrap();
    assert_eq!(p.name, "multi");
    assert_eq!(
        p.config_files,
        vec![dir.join("compose.yaml"), dir.join("compose.override.yaml")]
    );
    assert_eq!(as_json(&p.model), expected(MULTI_JSON, &dir));
}

#[test]
fn explicit_files_and_project_name() {
    let (_tmp, dir) = project("multi", MULTI);
    let mut o = opts(&dir);
    o.config_files = vec![PathBuf::from("compose.yaml")];
    o.project_name = Some("other".into());
    let p = load(&o).unwrap();
    assert_eq!(p.name, "other");
    assert_eq!(p.config_files, vec![dir.join("compose.yaml")]);
    // without the override, api keeps its own port and has no DEBUG
    assert_eq!(p.model["services"]["api"]["ports"][0]["published"], "8000");
    assert!(p.model["services"]["api"]["environment"].get("DEBUG").is_none());
    assert_eq!(p.model["volumes"]["qdata"]["name"], "other_qdata");
}

#[test]
fn discovery_walks_up_from_a_subdirectory_and_compose_file_is_honoured() {
    let (_tmp, dir) = project("multi", MULTI);
    let sub = dir.join("lib");
    let mut o = opts(&sub);
    // lib/ has a compose.yaml of its own: discovery stops there
    let p = load(&o).unwrap();
    assert_eq!(p.config_files, vec![sub.join("compose.yaml")]);
    assert_eq!(p.name, "lib");
    std::fs::create_dir_all(dir.join("deep/er")).unwrap();
    o.working_dir = dir.join("deep/er");
    let p = load(&o).unwrap();
    assert_eq!(p.working_dir, dir);
    assert_eq!(p.name, "multi");
    o.environment.insert("COMPOSE_FILE".into(), "../../compose.yaml".into());
    let p = load(&o).unwrap();
    assert_eq!(p.config_files, vec![dir.join("compose.yaml")]);
}

const PROFILES: &[(&str, &str)] = &[(
    "compose.yaml",
    r#"services:
  foo:
    image: foo
  bar:
    image: bar
    profiles: [test]
  baz:
    image: baz
    depends_on: [bar]
    profiles: [test]
  zot:
    image: zot
    depends_on: [bar]
    profiles: [debug]
"#,
)];

/// The spec's chapter 15 example, checked against Compose v2.
#[test]
fn profiles_and_selected_services() {
    let (_tmp, dir) = project("prof", PROFILES);
    let p = load(&opts(&dir)).unwrap();
    assert_eq!(services(&p.model), vec!["foo"]);
    assert_eq!(p.disabled_services, vec!["bar", "baz", "zot"]);

    let mut o = opts(&dir);
    o.profiles = vec!["test".into()];
    assert_eq!(services(&load(&o).unwrap().model), vec!["bar", "baz", "foo"]);

    let mut o = opts(&dir);
    o.environment.insert("COMPOSE_PROFILES".into(), "*".into());
    assert_eq!(services(&load(&o).unwrap().model), vec!["bar", "baz", "foo", "zot"]);

    // naming baz enables its profile, and bar comes along as its dependency
    let mut o = opts(&dir);
    o.services = vec!["baz".into()];
    let p = load(&o).unwrap();
    assert_eq!(services(&p.model), vec!["bar", "baz"]);
    assert_eq!(p.disabled_services, vec!["foo", "zot"]);

    // debug alone: zot depends on a disabled service
    let mut o = opts(&dir);
    o.profiles = vec!["debug".into()];
    let err = load(&o).unwrap_err().to_string();
    assert!(
        err.contains(r#"service "zot" depends on undefined service "bar""#),
        "{err}"
    );

    let mut o = opts(&dir);
    o.services = vec!["zot".into()];
    assert_eq!(load(&o).unwrap_err().to_string(), "no such service: bar");
}

fn load_err(text: &str) -> (String, PathBuf, tempfile::TempDir) {
    let (tmp, dir) = project("errs", &[("compose.yaml", text)]);
    let err = load(&opts(&dir)).unwrap_err();
    (err.to_string(), dir.join("compose.yaml"), tmp)
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    image: x\n    imagee: x\n",
            ":4: services.web: additional properties 'imagee' not allowed",
        ),
        ("services:\n  web:\n    image: x\n    ports: 80\n", ":4: services.web.ports: must be a array"),
        (
            "services:\n  web:\n    image: x\n  web:\n    image: y\n",
            ":4: mapping key \"web\" already defined at line 2",
        ),
        (
            "services:\n  web:\n    image: ${FOO:?need foo}\n",
            ":3: services.web.image: error while interpolating: required variable FOO is missing a value: need foo",
        ),
        (
            "services:\n  a:\n    image: x\n    networks: [nope]\n",
            ":4: services.a.networks: service \"a\" refers to undefined network nope",
        ),
        (
            "services:\n  a:\n    image: x\n    volumes: [\"vol:/x\"]\n",
            ":4: services.a.volumes.0: service \"a\" refers to undefined volume vol",
        ),
        (
            "services:\n  web:\n    command: x\n",
            ":2: services.web: service \"web\" has neither an image nor a build context specified",
        ),
        (
            "services:\n  a:\n    image: x\n    depends_on: [db]\n",
            ":4: services.a.depends_on: service \"a\" depends on undefined service \"db\"",
        ),
        (
            "services:\n  a:\n    image: x\n    network_mode: service:zz\n",
            ":2: services.a.depends_on: service \"a\" depends on undefined service \"zz\"",
        ),
        (
            "services:\n  a:\n    image: x\n    cpu_shares: ${CS:-abc}\n",
            ":4: services.a.cpu_shares: error while interpolating: failed to cast to expected type: strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        ("services:\n  a:\n    image: x\n    ports: [\"abc\"]\n", ":4: services.a.ports.0: invalid containerPort: abc"),
        (
            "services:\n  a:\n    image: x\n    pull_policy: sometimes\n",
            ":4: services.a.pull_policy: 'sometimes' does not match pattern",
        ),
        (
            "services:\n  a:\n    extends: b\n    image: x\n  b:\n    extends: a\n",
            ":3: services.a.extends: circular reference with extends: a -> b -> a",
        ),
    ];
    for (text, want) in cases {
        let (err, file, _tmp) = load_err(text);
        let want = format!("{}{want}", file.display());
        assert!(err.starts_with(&want), "\n got: {err}\nwant: {want}");
    }
}

#[test]
fn dependency_cycles_are_refused() {
    let (err, _, _tmp) = load_err(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n",
    );
    assert_eq!(err, "dependency cycle detected: a -> b -> c -> a");
}

#[test]
fn invalid_project_names_are_refused_and_others_normalised() {
    let (_tmp, dir) = project("prof", PROFILES);
    let mut o = opts(&dir);
    o.project_name = Some("Bad".into());
    let err = load(&o).unwrap_err();
    assert!(matches!(err, LoadError::ProjectName { .. }));
    assert!(
        err.to_string()
            .contains("must consist only of lowercase alphanumeric characters"),
        "{err}"
    );

    let (_tmp, dir) = project("My Proj.X", &[("compose.yaml", "services: {a: {image: x}}\n")]);
    assert_eq!(load(&opts(&dir)).unwrap().name, "myprojx");
    let (_tmp, dir) = project("p", &[("compose.yaml", "name: Bad.Name\nservices: {a: {image: x}}\n")]);
    assert_eq!(load(&opts(&dir)).unwrap().name, "badname");
}

#[test]
fn alias_bombs_and_empty_files_are_refused() {
    let mut text = String::from("x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!("x-a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
    }
    text.push_str("services: {a: {image: x}}\n");
    let (err, file, _tmp) = load_err(&text);
    assert!(
        err.starts_with(&file.display().to_string()) && err.contains("too large"),
        "{err}"
    );
    let (err, _, _tmp) = load_err("");
    assert!(err.ends_with("empty compose file"), "{err}");
}

#[test]
fn no_interpolate_keeps_variables() {
    let (_tmp, dir) = project("raw", &[("compose.yaml", "services:\n  a:\n    image: \"x:${TAG}\"\n")]);
    let mut o = opts(&dir);
    o.interpolate = false;
    let p = load(&o).unwrap();
    assert_eq!(p.model["services"]["a"]["image"], "x:${TAG}");
}

const ATTRIBUTES: &str = r#"services:
  a:
    image: x
    logging:
      driver: json-file
      options: {max-size: 10m, max-file: 3}
    devices: ["/dev/fuse"]
    configs: [{source: c, target: /etc/c, mode: 0444}]
    deploy:
      mode: replicated
      replicas: 3
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      update_config: {parallelism: 2, delay: 10s}
      labels: [a=b]
    build:
      context: .
      args: {A: 1, B: "two"}
      labels: {x: y}
      cache_from: [a]
    pid: host
    ipc: shareable
    security_opt: [no-new-privileges:true]
    cap_drop: [ALL]
    working_dir: /app
    hostname: h
    init: true
    mem_swappiness: 10
    pids_limit: 100
    stop_signal: SIGTERM
    dns_search: example.com
    group_add: [mail]
    platform: linux/amd64
    pull_policy: always
    annotations: [a=b]
    tmpfs: ["/run:size=10m"]
    storage_opt: {size: 1G}
    blkio_config: {weight: 300}
    volumes:
      - type: tmpfs
        target: /t
        tmpfs: {size: 1g}
      - type: bind
        source: ./rel
        target: /rel
        bind: {create_host_path: true}
  b:
    image: y
    network_mode: host
    environment:
      B: ${UNSET_VAR}
configs:
  c:
    file: ./c.txt
networks:
  n:
    external: true
    name: real
"#;

const ATTRIBUTES_JSON: &str = r#"{
  "configs": {
    "c": {
      "name": "o8_c",
      "file": "@DIR@/c.txt"
    }
  },
  "name": "o8",
  "networks": {
    "default": {
      "name": "o8_default",
      "ipam": {}
    }
  },
  "services": {
    "a": {
      "annotations": {
        "a": "b"
      },
      "build": {
        "context": "@DIR@",
        "dockerfile": "Dockerfile",
        "args": {
          "A": "1",
          "B": "two"
        },
        "labels": {
          "x": "y"
        },
        "cache_from": [
          "a"
        ]
      },
      "blkio_config": {
        "weight": 300
      },
      "cap_drop": [
        "ALL"
      ],
      "command": null,
      "configs": [
        {
          "source": "c",
          "target": "/etc/c",
          "mode": "0444"
        }
      ],
      "deploy": {
        "mode": "replicated",
        "replicas": 3,
        "labels": {
          "a": "b"
        },
        "update_config": {
          "parallelism": 2,
          "delay": "10s"
        },
        "resources": {},
        "restart_policy": {
          "condition": "on-failure",
          "delay": "5s",
          "max_attempts": 3,
          "window": "2m0s"
        },
        "placement": {}
      },
      "devices": [
        {
          "source": "/dev/fuse",
          "target": "/dev/fuse",
          "permissions": "rwm"
        }
      ],
      "dns_search": [
        "example.com"
      ],
      "entrypoint": null,
      "group_add": [
        "mail"
      ],
      "hostname": "h",
      "image": "x",
      "init": true,
      "ipc": "shareable",
      "logging": {
        "driver": "json-file",
        "options": {
          "max-file": "3",
          "max-size": "10m"
        }
      },
      "mem_swappiness": "10",
      "networks": {
        "default": null
      },
      "pid": "host",
      "pids_limit": 100,
      "platform": "linux/amd64",
      "pull_policy": "always",
      "security_opt": [
        "no-new-privileges:true"
      ],
      "stop_signal": "SIGTERM",
      "storage_opt": {
        "size": "1G"
      },
      "tmpfs": [
        "/run:size=10m"
      ],
      "volumes": [
        {
          "type": "tmpfs",
          "target": "/t",
          "tmpfs": {
            "size": "1073741824"
          }
        },
        {
          "type": "bind",
          "source": "@DIR@/rel",
          "target": "/rel",
          "bind": {
            "create_host_path": true
          }
        }
      ],
      "working_dir": "/app"
    },
    "b": {
      "command": null,
      "entrypoint": null,
      "environment": {
        "B": ""
      },
      "image": "y",
      "network_mode": "host"
    }
  }
}"#;

/// Many service attributes at once (logging, devices, configs, deploy, build args and labels,
/// tmpfs and bind mounts in long syntax, byte sizes), an unset variable and an unused external
/// network, against Compose v2's output.
#[test]
fn service_attributes_match_compose() {
    let (_tmp, dir) = project("o8", &[("compose.yaml", ATTRIBUTES)]);
    let p = load(&opts(&dir)).unwrap();
    assert_eq!(as_json(&p.model), expected(ATTRIBUTES_JSON, &dir));
    assert!(p
        .warnings
        .iter()
        .any(|w| w == "The \"UNSET_VAR\" variable is not set. Defaulting to a blank string."));
}

#[test]
fn paths_stay_relative_when_not_resolved() {
    let (_tmp, dir) = project("o8", &[("compose.yaml", ATTRIBUTES)]);
    let mut o = opts(&dir);
    o.resolve_paths = false;
    let p = load(&o).unwrap();
    assert_eq!(p.model["services"]["a"]["build"]["context"], ".");
    assert_eq!(p.model["services"]["a"]["volumes"][1]["source"], "./rel");
    assert_eq!(p.model["configs"]["c"]["file"], "./c.txt");
}
