/** A FIFO bound on concurrent tasks: the accessibility bus's bound on calls in flight (`AtspiBus`). */
export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly max: number) {}
  /** Run `fn` when a slot is free (at once when one is). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.max && this.queue.length === 0) return this.go(fn);
    return new Promise<void>((r) => this.queue.push(r)).then(() => this.go(fn));
  }
  private go<T>(fn: () => Promise<T>): Promise<T> {
    this.active++;
    const p = new Promise<T>((resolve) => resolve(fn()));
    p.then(this.release, this.release);
    return p;
  }
  private readonly release = (): void => {
    this.active--;
    this.queue.shift()?.();
  };
}
