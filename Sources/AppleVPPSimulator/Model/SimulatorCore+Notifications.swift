public import AppleVPP
import Foundation

/// The newest `capacity` notifications the simulator produced, in a ring: appending and updating by id are O(1).
struct NotificationLog: Sendable {
    static let capacity = 10_000
    private var ring: [SimulatedNotification] = []
    /// Sequence number (position since the last clear) of each logged notification.
    private var sequenceById: [String: Int] = [:]
    private var nextSequence = 0

    mutating func append(_ entry: SimulatedNotification) {
        let slot = nextSequence % Self.capacity
        if ring.count < Self.capacity {
            ring.append(entry)
        } else {
            sequenceById.removeValue(forKey: ring[slot].notificationId)
            ring[slot] = entry
        }
        sequenceById[entry.notificationId] = nextSequence
        nextSequence += 1
    }

    /// Changes a logged notification; nothing when it has left the log.
    mutating func update(_ id: String, _ change: (inout SimulatedNotification) -> Void) {
        guard let sequence = sequenceById[id] else { return }
        change(&ring[sequence % Self.capacity])
    }

    /// Oldest first.
    var entries: [SimulatedNotification] {
        guard ring.count == Self.capacity else { return ring }
        let oldest = nextSequence % Self.capacity
        return Array(ring[oldest...] + ring[..<oldest])
    }

    mutating func removeAll() { self = Self() }
}

/// A notification fault injected and not used up, with the notifications a `reorder` fault holds.
struct ActiveNotificationFault: Sendable {
    var fault: NotificationFault
    var held: [OutgoingNotification] = []
}

extension SimulatorCore.State {
    /// Logs a notification as pending and counts it; false (and logged as dropped) once the simulator has shut down or
    /// holds `maxPendingNotifications` undelivered ones already (unless `force`: the TEST handshake waits for its own).
    mutating func record(_ item: OutgoingNotification, atSeconds: Double, force: Bool = false) -> Bool {
        var entry = SimulatedNotification(
            notificationId: item.id,
            notificationType: item.type,
            uId: item.uId,
            url: item.url,
            attempts: 0,
            status: .pending,
            body: String(decoding: item.body, as: UTF8.self),
            producedAtSeconds: atSeconds
        )
        if shutDown {
            entry.status = .dropped
            entry.lastError = "the simulator has shut down"
        } else if !force, pendingNotifications >= SimulatorCore.maxPendingNotifications {
            entry.status = .dropped
            entry.lastError = "the simulator's notification queue is full"
            notificationsDroppedForQueueLimit += 1
        } else {
            pendingNotifications += 1
        }
        notificationLog.append(entry)
        return entry.status == .pending
    }

    /// Moves the notifications a location produced to the queue `flushNotifications` empties.
    mutating func collectNotifications(of uId: String, atSeconds: Double) {
        guard let items = locations[uId]?.outbox, !items.isEmpty else { return }
        locations[uId]!.outbox.removeAll()
        for item in items where record(item, atSeconds: atSeconds) { outbox.append(item) }
    }

    /// A pending notification reached its end.
    mutating func finish(_ id: String, _ status: SimulatedNotification.Status, error: String? = nil) {
        pendingNotifications -= 1
        notificationLog.update(id) { entry in
            entry.status = status
            if let error { entry.lastError = error }
        }
    }

    /// Takes one use of the first fault of `kinds` that matches `type`, and removes it once used up. A `reorder`
    /// fault holds `item`; `released` is what a fault used up now held (to send now, in reverse order).
    mutating func takeNotificationFault(
        for type: NotificationType,
        kinds: Set<NotificationFault.Kind>,
        holding item: OutgoingNotification? = nil
    ) -> (fault: NotificationFault, released: [OutgoingNotification])? {
        guard
            let index = notificationFaults.firstIndex(where: {
                kinds.contains($0.fault.kind) && $0.fault.matches(type)
            })
        else { return nil }
        notificationFaults[index].fault.count -= 1
        let fault = notificationFaults[index].fault
        if fault.kind == .reorder, let item { notificationFaults[index].held.append(item) }
        let released = fault.count <= 0 ? notificationFaults.remove(at: index).held : []
        return (fault, released)
    }
}

extension SimulatorCore {
    /// The most notifications waiting for delivery (or a retry) at once; beyond it new ones are dropped and counted.
    static let maxPendingNotifications = 100_000

    var secondsSinceStart: Double { started.duration(to: .now).seconds }

    // MARK: Control

    /// Injects a fault into the next matching notifications.
    public func injectNotificationFault(_ fault: NotificationFault) {
        state.withLockedValue { $0.notificationFaults.append(ActiveNotificationFault(fault: fault)) }
    }

    /// Clears the notification faults; notifications a `reorder` fault holds are sent now, in reverse order.
    public func clearNotificationFaults() {
        state.withLockedValue { state in
            let held = state.notificationFaults.flatMap(\.held)
            state.notificationFaults.removeAll()
            if !held.isEmpty { startDelivery(held.reversed(), fault: nil, in: &state) }
        }
    }

    /// The notification faults not used up yet (`count` falls as notifications take them).
    public func pendingNotificationFaults() -> [NotificationFault] {
        state.withLockedValue { $0.notificationFaults.map(\.fault) }
    }

    /// Every notification the simulator produced (the newest 10,000), oldest first, with its delivery so far; only
    /// those of location `uId` when given.
    public func notificationLog(uId: String? = nil) -> [SimulatedNotification] {
        let entries = state.withLockedValue { $0.notificationLog.entries }
        guard let uId else { return entries }
        return entries.filter { $0.uId == uId }
    }

    /// Forgets the delivery log (deliveries under way go on, unlogged).
    public func clearNotificationLog() {
        state.withLockedValue { $0.notificationLog.removeAll() }
    }

    /// How many notifications were dropped because `maxPendingNotifications` (100,000) were waiting already.
    public var notificationsDroppedForQueueLimit: Int {
        state.withLockedValue { $0.notificationsDroppedForQueueLimit }
    }

    /// Stops the background work: event completions and notification deliveries still waiting are cancelled
    /// (undelivered notifications end `dropped`), and the HTTP client that sends notifications is shut down.
    /// `AppleVPPSimulator.shutdown()` calls it; a core run on its own should too. Nothing is sent afterwards.
    public func shutdown() async {
        let tasks = state.withLockedValue { state in
            state.shutDown = true
            for item in state.notificationFaults.flatMap(\.held) + state.outbox {
                state.finish(item.id, .dropped, error: "the simulator has shut down")
            }
            state.outbox.removeAll()
            for index in state.notificationFaults.indices { state.notificationFaults[index].held.removeAll() }
            return Array(state.tasks.values)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await sender.shutdown()
    }

    // MARK: Background tasks

    /// Runs `operation` in a task that `shutdown()` cancels and waits for; nothing once shut down (false then).
    @discardableResult
    func startTask(in state: inout State, _ operation: @escaping @Sendable () async -> Void) -> Bool {
        guard !state.shutDown else { return false }
        let id = state.nextTaskId
        state.nextTaskId += 1
        // Created under the lock, so it is in `tasks` before it can end and remove itself.
        state.tasks[id] = Task {
            await operation()
            self.state.withLockedValue { _ = $0.tasks.removeValue(forKey: id) }
        }
        return true
    }

    /// With `.afterDelay(d)`, completes the location's due events once `d` has passed, with nobody polling (Apple
    /// finishes events on its own and notifies; reference §3).
    func scheduleEventCompletion(uId: String?) {
        guard case .afterDelay(let delay) = configuration.eventCompletion, let uId else { return }
        state.withLockedValue { state in
            startTask(in: &state) {
                do { try await Task.sleep(for: delay) } catch { return }
                _ = try? self.withLocation(uId) { $0.processEvents(submittedBefore: .now - delay) }
            }
        }
    }

    // MARK: Delivery

    /// Hands the queued notifications to delivery: applies the faults, then starts a task per notification (or per
    /// group a `reorder` fault releases). Called after every change made under the lock, once it is released; the
    /// sending itself never runs under the lock, nor delays the answer that produced the notification.
    func flushNotifications() {
        state.withLockedValue { state in
            guard !state.outbox.isEmpty else { return }
            let items = state.outbox
            state.outbox.removeAll()
            for item in items { dispatch(item, in: &state) }
        }
    }

    private func dispatch(_ item: OutgoingNotification, in state: inout State) {
        guard
            let (fault, released) = state.takeNotificationFault(
                for: item.type,
                kinds: [.drop, .delay, .duplicate, .reorder],
                holding: item
            )
        else {
            startDelivery([item], fault: nil, in: &state)
            return
        }
        state.notificationLog.update(item.id) { $0.fault = fault.kind }
        switch fault.kind {
        case .drop: state.finish(item.id, .dropped, error: "dropped by a notification fault")
        case .reorder: break  // held until the fault's last notification
        case .delay, .duplicate, .fail: startDelivery([item], fault: fault, in: &state)
        }
        if !released.isEmpty { startDelivery(released.reversed(), fault: nil, in: &state) }
    }

    /// Delivers `items` one after the other in one task (so a reordered group arrives in the order given).
    func startDelivery(_ items: [OutgoingNotification], fault: NotificationFault?, in state: inout State) {
        let started = startTask(in: &state) {
            for item in items { await self.deliver(item, fault: fault) }
        }
        if !started {
            for item in items { state.finish(item.id, .dropped, error: "the simulator has shut down") }
        }
    }

    /// One notification's delivery: up to 1 + `notificationRetryDelays.count` attempts (Apple: up to 3 within 1–5
    /// minutes, best effort; reference §3), twice under a `duplicate` fault, then its final status in the log.
    private func deliver(_ item: OutgoingNotification, fault: NotificationFault?) async {
        if fault?.kind == .delay { try? await Task.sleep(for: .milliseconds(fault?.delayMilliseconds ?? 1000)) }
        var delivered = await attemptWithRetries(item)
        if fault?.kind == .duplicate, !Task.isCancelled {
            delivered = await attemptWithRetries(item) || delivered
        }
        let cancelled = Task.isCancelled
        state.withLockedValue { state in
            if delivered {
                state.finish(item.id, .delivered)
            } else if cancelled {
                state.finish(item.id, .dropped, error: "the simulator shut down before it was delivered")
            } else {
                state.finish(item.id, .failed)
            }
        }
    }

    private func attemptWithRetries(_ item: OutgoingNotification) async -> Bool {
        let delays = configuration.notificationRetryDelays
        for attempt in 0...delays.count {
            if attempt > 0 {
                do { try await Task.sleep(for: delays[attempt - 1]) } catch { return false }
            }
            if Task.isCancelled { return false }
            if await attemptOnce(item) { return true }
        }
        return false
    }

    /// One POST (or, under a `fail` fault, a failed attempt that sends nothing), logged.
    private func attemptOnce(_ item: OutgoingNotification) async -> Bool {
        let failed = state.withLockedValue { $0.takeNotificationFault(for: item.type, kinds: [.fail]) } != nil
        let outcome =
            failed
            ? NotificationSender.Outcome(error: "failed by a notification fault")
            : await sender.post(item, timeout: configuration.notificationTimeout)
        state.withLockedValue { state in
            state.notificationLog.update(item.id) { entry in
                entry.attempts += 1
                entry.lastHTTPStatus = outcome.status
                entry.lastError = outcome.error
                if failed { entry.fault = .fail }
            }
        }
        return outcome.delivered
    }

    /// The `TEST_NOTIFICATION` of `POST /client/config`: one attempt to the new URL with the new token, waited for.
    /// True when it was answered 2xx. Sent whatever the subscribed types (reference §2.3); faults apply to it but
    /// `reorder`.
    func sendTestNotification(uId: String, url: String, token: String) async -> Bool {
        let item = OutgoingNotification.make(.test, EmptyNotification(), uId: uId, url: url, token: token)
        let (recorded, fault) = state.withLockedValue { state in
            let recorded = state.record(item, atSeconds: secondsSinceStart, force: true)
            guard recorded else { return (false, NotificationFault?.none) }
            let fault = state.takeNotificationFault(for: .test, kinds: [.drop, .delay, .duplicate])?.fault
            if let fault { state.notificationLog.update(item.id) { $0.fault = fault.kind } }
            return (true, fault)
        }
        guard recorded else { return false }
        if fault?.kind == .drop {
            state.withLockedValue { $0.finish(item.id, .dropped, error: "dropped by a notification fault") }
            return false
        }
        if fault?.kind == .delay { try? await Task.sleep(for: .milliseconds(fault?.delayMilliseconds ?? 1000)) }
        var delivered = await attemptOnce(item)
        if fault?.kind == .duplicate { delivered = await attemptOnce(item) || delivered }
        state.withLockedValue { $0.finish(item.id, delivered ? .delivered : .failed) }
        return delivered
    }
}
