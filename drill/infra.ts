/**
 * The drill's own infrastructure, all on 127.0.0.1 and all its own (nothing shared with the machine's services, so a
 * drill can stop and restart them freely): a PostgreSQL cluster (initdb into a temporary directory, run as the
 * `postgres` user when started as root), a Redis server, nginx in front of the replicas, and the codex-api replicas.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePort } from "../bench/lib.ts"

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `probe` every 50 ms until it returns true; false at the deadline. */
export const waitFor = async (timeoutMs: number, probe: () => Promise<boolean>): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return true
    await sleep(50)
  }
  return false
}

export const httpStatus = async (url: string, timeoutMs = 2000): Promise<number> => {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    await response.arrayBuffer()
    return response.status
  } catch {
    return 0
  }
}

const asRoot = process.getuid?.() === 0

/** Runs a PostgreSQL binary as `postgres` (it refuses to run as root). */
const pgBin = (name: string, args: ReadonlyArray<string>) => {
  const versions = readdirSync("/usr/lib/postgresql").sort()
  const bin = join("/usr/lib/postgresql", versions.at(-1) ?? "", "bin", name)
  const [command, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, [...args]]
  execFileSync(command, argv, { stdio: ["ignore", "ignore", "inherit"] })
}

export interface Postgres {
  readonly url: string
  readonly stop: () => void
  readonly start: () => void
}

export const startPostgres = async (dir: string): Promise<Postgres> => {
  const data = join(dir, "pg")
  mkdirSync(data, { recursive: true })
  if (asRoot) execFileSync("chown", ["-R", "postgres:postgres", dir])
  chmodSync(dir, 0o755)
  pgBin("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
  const port = await freePort()
  const options = `-p ${port} -k ${data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`
  const start = () => pgBin("pg_ctl", ["-D", data, "-o", options, "-l", join(data, "server.log"), "-w", "start"])
  const stop = () => pgBin("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"])
  start()
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, start, stop }
}

export interface Redis {
  readonly url: string
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
}

export const startRedis = async (): Promise<Redis> => {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
    await waitFor(5000, async () => {
      try {
        execFileSync("redis-cli", ["-p", String(port), "ping"], { stdio: "pipe" })
        return true
      } catch {
        return false
      }
    })
  }
  const stop = async () => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once("exit", resolve))
    running.kill("SIGKILL")
    await exited
  }
  await start()
  return { url: `redis://127.0.0.1:${port}`, start, stop }
}

export interface Replica {
  readonly name: string
  readonly port: number
  readonly base: string
  child: ChildProcess
}

export const startReplica = async (
  name: string,
  port: number,
  env: Record<string, string>,
  logDir: string
): Promise<Replica> => {
  const out = openSync(join(logDir, `${name}.log`), "a")
  const child = spawn(process.execPath, ["src/main.ts"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), ...env },
    stdio: ["ignore", out, out]
  })
  const base = `http://127.0.0.1:${port}`
  const ready = await waitFor(60_000, async () => (await httpStatus(`${base}/readyz`)) === 200)
  if (!ready) throw new Error(`${name} did not get ready (see ${join(logDir, `${name}.log`)})`)
  return { name, port, base, child }
}

/** Sends `signal` and waits for the exit: the exit code (null when killed) and how long it took. */
export const stopReplica = async (replica: Replica, signal: NodeJS.Signals) => {
  const started = Date.now()
  const child = replica.child
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, ms: 0 }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  child.kill(signal)
  const code = await exited
  return { code, ms: Date.now() - started }
}

export interface Nginx {
  readonly base: string
  readonly stop: () => Promise<void>
}

/** nginx round-robin over the replicas; retries the next one on connection errors and timeouts only. */
export const startNginx = async (dir: string, replicas: ReadonlyArray<Replica>): Promise<Nginx> => {
  const port = await freePort()
  const prefix = join(dir, "nginx")
  mkdirSync(join(prefix, "logs"), { recursive: true })
  const conf = join(prefix, "nginx.conf")
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "logs", "error.log")} warn;
${asRoot ? "user root;" : ""}
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, "body")};
  proxy_temp_path ${join(prefix, "proxy")};
  fastcgi_temp_path ${join(prefix, "fastcgi")};
  uwsgi_temp_path ${join(prefix, "uwsgi")};
  scgi_temp_path ${join(prefix, "scgi")};
  client_max_body_size 1m;
  upstream codex {
${replicas.map((r) => `    server 127.0.0.1:${r.port} max_fails=0;`).join("\n")}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://codex;
      # Connection errors and timeouts only. non_idempotent: a POST whose connection was reset before an answer is
      # tried on the next replica too. Safe here: a draining replica finishes every request it has begun, so a reset
      # means the request never reached the application (a connection still in the accept queue when the listener
      # closed), and state-changing requests carry an Idempotency-Key.
      proxy_next_upstream error timeout non_idempotent;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Host $host;
    }
  }
}
`
  )
  const binary = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"
  const child = spawn(binary, ["-c", conf, "-p", prefix], { stdio: ["ignore", "ignore", "inherit"] })
  const base = `http://127.0.0.1:${port}`
  if (!(await waitFor(10_000, async () => (await httpStatus(`${base}/livez`)) === 200))) {
    throw new Error("nginx did not come up")
  }
  const stop = async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    child.kill("SIGTERM")
    await exited
  }
  return { base, stop }
}

/** A self-signed certificate for 127.0.0.1: the receivers speak https (staging requires it), the replicas trust it. */
export const makeCertificate = (dir: string) => {
  const cert = join(dir, "receiver-cert.pem")
  const key = join(dir, "receiver-key.pem")
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"].concat([
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert
    ]),
    { stdio: "ignore" }
  )
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8"), certPath: cert }
}
