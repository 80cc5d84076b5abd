// Enumeration defence: a vendor that keeps presenting payment IDs that do not exist (or with wrong
// security codes, which answer the same ID_UNKNOWN) is guessing. Per vendor, in a fixed window:
//
//   unknown IDs in window:  0 ........ slowAfter ........ suspendAfter
//                           normal     each authorize      the vendor is suspended for suspendMs:
//                                      waits delayMs       sessions closed (4003), new ones refused,
//                                                          HTTP answers 403 SUSPENDED, an alert
//
// The guess space is 10^16 (1024 partitions × 10^10 numbers × 10^3 codes) and a live ID dies after
// one use or 10 minutes by default, so even unthrottled guessing finds nothing; this makes it cost.

export interface EnumerationLimits {
  /** Window over which unknown IDs are counted, per vendor. */
  windowMs: number;
  /** Unknown IDs in a window after which each authorize from the vendor is delayed. */
  slowAfter: number;
  /** Delay added to each authorize of a slowed vendor. */
  delayMs: number;
  /** Unknown IDs in a window after which the vendor is suspended. */
  suspendAfter: number;
  /** How long a suspension lasts. */
  suspendMs: number;
}

interface VendorState { windowStart: number; unknowns: number; suspendedUntil: number }

export class EnumerationGuard {
  private readonly vendors = new Map<string, VendorState>();
  suspensions = 0;
  /** Called once when a vendor gets suspended (the switch closes its sessions). */
  onSuspend: ((vendorId: string) => void) | null = null;

  constructor(readonly limits: EnumerationLimits) {}

  private state(vendorId: string, now: number): VendorState {
    let v = this.vendors.get(vendorId);
    if (!v) {
      v = { windowStart: now, unknowns: 0, suspendedUntil: 0 };
      this.vendors.set(vendorId, v);
    }
    if (now - v.windowStart >= this.limits.windowMs) {
      v.windowStart = now;
      v.unknowns = 0;
    }
    return v;
  }

  /** Record one ID_UNKNOWN answer given to a vendor. */
  unknownId(vendorId: string, now = Date.now()): void {
    const v = this.state(vendorId, now);
    v.unknowns++;
    if (v.unknowns >= this.limits.suspendAfter && v.suspendedUntil <= now) {
      v.suspendedUntil = now + this.limits.suspendMs;
      this.suspensions++;
      // An alert for operators: the vendor id is not a secret, the IDs tried are never logged.
      console.error(`ALERT enumeration: vendor ${vendorId} presented ${v.unknowns} unknown payment IDs within `
        + `${this.limits.windowMs} ms; suspended for ${this.limits.suspendMs} ms`);
      this.onSuspend?.(vendorId);
    }
  }

  suspended(vendorId: string, now = Date.now()): boolean {
    const v = this.vendors.get(vendorId);
    return v !== undefined && v.suspendedUntil > now;
  }

  /** Milliseconds to delay this vendor's next authorize (0 when it is not being slowed). */
  delayMs(vendorId: string, now = Date.now()): number {
    const v = this.vendors.get(vendorId);
    if (!v || now - v.windowStart >= this.limits.windowMs) return 0;
    return v.unknowns >= this.limits.slowAfter ? this.limits.delayMs : 0;
  }

  suspendedCount(now = Date.now()): number {
    let n = 0;
    for (const v of this.vendors.values()) if (v.suspendedUntil > now) n++;
    return n;
  }

  /** Forget vendors that are idle and not suspended (bounded memory). */
  prune(now = Date.now()): void {
    for (const [id, v] of this.vendors) {
      if (v.suspendedUntil <= now && now - v.windowStart >= this.limits.windowMs) this.vendors.delete(id);
    }
  }
}
