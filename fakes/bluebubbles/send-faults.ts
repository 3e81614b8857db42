// The send outcomes a test scripts ahead (`failNextSends`, `hangNextSends`), and what a hang leaves behind.
export class SendFaults {
  /** tempGuids of sends still hanging: BB refuses a second send with the same tempGuid meanwhile. */
  readonly inFlight = new Set<string>();
  readonly hangs: { ms: number; sent: boolean }[] = [];
  readonly failures: number[] = [];
  private readonly timers = new Map<NodeJS.Timeout, () => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.timers.delete(timer); resolve(); }, ms);
      this.timers.set(timer, resolve);
    });
  }

  /** On stop: ends every hang now, so no request outlives the server. */
  wakeAll(): void {
    for (const [timer, wake] of this.timers) { clearTimeout(timer); wake(); }
    this.timers.clear();
  }
}
