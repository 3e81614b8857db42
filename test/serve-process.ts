// The real `msgbubbles serve` as a child process, for the crash tests (SIGKILL, restart).
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** http://127.0.0.1:<port>, read from the start-up line. */
  base: string;
  exited: Promise<number | null>;
}

/** Starts `serve` with `env` over this process's environment; resolves once it listens. */
export async function startServe(env: Record<string, string>): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", "import { main } from './src/cli/main.ts'; process.exitCode = await main([\"node\", \"msgbubbles\", ...process.argv.slice(1)]);", "serve"],
    { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left behind: a child still starting would keep the test process alive forever.
      child.kill("SIGKILL");
      reject(new Error(`serve did not start in 20 s: ${out} ${err}`));
    }, 20_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${out} ${err}`));
    });
  });
  return { child, base, exited };
}
