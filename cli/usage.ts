/** A mistake in how the command was called: printed as one line, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `memslot-oracle: an executable spec of Linux KVM memslots, and an oracle for implementations

Usage:
  memslot-oracle check [--impl scalable|legacy] [--seed S] [--runs N] [--max-steps N] [--profile P]
                       [--out DIR] [--workers N] [--shard i/n] [--path P --replay-path R]
      Run the stateful conformance suite against an implementation (default: scalable).
  memslot-oracle check --sut kvm|"CMD ARGS" [--seed S] [--runs N] [--max-steps N] [--profile P] [--out DIR] [--timeout MS]
                       [--path P --replay-path R]
      The same suite over the SUT protocol (spec/80-protocol.md), against any program or /dev/kvm.
  memslot-oracle replay TRACE [--profile NAME|FILE] [--sut kvm|"CMD ARGS"] [--timeout MS] [--record OUT] [--lint]
      Replay a trace through the model (and a SUT), comparing every answer.
  memslot-oracle record --sut kvm|"CMD ARGS" --out FILE [--seed S] [--sequences N] [--steps N] [--wide]
      Send random request sequences to a SUT and write its answers as a trace.
  memslot-oracle record --out FILE [--profile P] -- CMD ARGS
      Run a VMM under the ioctl recorder (LD_PRELOAD): its memslot ioctls and the kernel's answers as a trace,
      what a trace cannot hold in FILE.extra.jsonl; then replay it with its coverage and the VMM checks.
  memslot-oracle repro TRACE [--format c|vitest|text] [--out FILE]
      Turn a trace into a C program (run it against /dev/kvm), a vitest file, or a readable list.
  memslot-oracle vectors --out FILE [--profile P] [--seed S] [--count N]
      Write conformance vectors: a trace with the model's answers that hits every rule a trace can express.
  memslot-oracle serve [--profile P] [--record OUT] [--check-against kvm|"CMD ARGS"] [--socket PATH] [--timeout MS] [--lint]
      Play the kernel: answer protocol requests (stdin, and a Unix socket) from the model, as a SUT would.
  memslot-oracle lint TRACE [--profile P] [--limit N]
      Run the VMM checks (spec/90-vmm-checks.md) over a trace: update windows, id leaks, ignored errors, internal slots.
  memslot-oracle profiles
      List the built-in profiles.

Exit status: 0 all agree, 1 a disagreement was found, 2 bad input, bad usage or a broken SUT.
Profiles: x86_64 (two address spaces), x86_64-nosmm (one; the default), linux-5.10-x86_64, or a JSON file.`;
