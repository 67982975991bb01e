import ArgumentParser
import Foundation

/// Every setting as a command-line flag. Values stay text here; `ResolvedSettings` merges them with the environment
/// and the config file and checks them.
struct SettingOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "A config file of VPP_NAME=value lines (env VPP_CONFIG).")
    var configFile: String?

    @Option(name: .customLong(Setting.host.rawValue), help: ArgumentHelp(Setting.host.help))
    var host: String?
    @Option(name: .customLong(Setting.port.rawValue), help: ArgumentHelp(Setting.port.help))
    var port: String?
    @Option(name: .customLong(Setting.metricsHost.rawValue), help: ArgumentHelp(Setting.metricsHost.help))
    var metricsHost: String?
    @Option(name: .customLong(Setting.metricsPort.rawValue), help: ArgumentHelp(Setting.metricsPort.help))
    var metricsPort: String?
    @Option(name: .customLong(Setting.databaseURL.rawValue), help: ArgumentHelp(Setting.databaseURL.help))
    var databaseURL: String?
    @Option(name: .customLong(Setting.dataDir.rawValue), help: ArgumentHelp(Setting.dataDir.help))
    var dataDir: String?
    @Option(name: .customLong(Setting.databasePoolSize.rawValue), help: ArgumentHelp(Setting.databasePoolSize.help))
    var databasePoolSize: String?
    @Option(
        name: .customLong(Setting.databaseStatementTimeout.rawValue),
        help: ArgumentHelp(Setting.databaseStatementTimeout.help)
    )
    var databaseStatementTimeout: String?
    @Option(
        name: .customLong(Setting.migrationConcurrency.rawValue),
        help: ArgumentHelp(Setting.migrationConcurrency.help)
    )
    var migrationConcurrency: String?
    @Option(name: .customLong(Setting.maxFrameBytes.rawValue), help: ArgumentHelp(Setting.maxFrameBytes.help))
    var maxFrameBytes: String?
    @Option(name: .customLong(Setting.frameBudgetBytes.rawValue), help: ArgumentHelp(Setting.frameBudgetBytes.help))
    var frameBudgetBytes: String?
    @Option(name: .customLong(Setting.maxCallsInFlight.rawValue), help: ArgumentHelp(Setting.maxCallsInFlight.help))
    var maxCallsInFlight: String?
    @Option(name: .customLong(Setting.maxConnections.rawValue), help: ArgumentHelp(Setting.maxConnections.help))
    var maxConnections: String?
    @Option(name: .customLong(Setting.authTimeout.rawValue), help: ArgumentHelp(Setting.authTimeout.help))
    var authTimeout: String?
    @Option(name: .customLong(Setting.idleTimeout.rawValue), help: ArgumentHelp(Setting.idleTimeout.help))
    var idleTimeout: String?
    @Option(name: .customLong(Setting.maxCallDuration.rawValue), help: ArgumentHelp(Setting.maxCallDuration.help))
    var maxCallDuration: String?
    @Option(name: .customLong(Setting.shutdownGrace.rawValue), help: ArgumentHelp(Setting.shutdownGrace.help))
    var shutdownGrace: String?
    @Option(name: .customLong(Setting.eventLoopThreads.rawValue), help: ArgumentHelp(Setting.eventLoopThreads.help))
    var eventLoopThreads: String?
    @Option(name: .customLong(Setting.logLevel.rawValue), help: ArgumentHelp(Setting.logLevel.help))
    var logLevel: String?
    @Option(name: .customLong(Setting.callLogLevel.rawValue), help: ArgumentHelp(Setting.callLogLevel.help))
    var callLogLevel: String?
    @Option(
        name: .customLong(Setting.bootstrapOperatorKey.rawValue),
        help: ArgumentHelp(Setting.bootstrapOperatorKey.help + " Avoid the flag: it shows in process listings.")
    )
    var bootstrapOperatorKey: String?
    @Option(name: .customLong(Setting.appleBaseURL.rawValue), help: ArgumentHelp(Setting.appleBaseURL.help))
    var appleBaseURL: String?
    @Option(
        name: .customLong(Setting.tokenKey.rawValue),
        help: ArgumentHelp(Setting.tokenKey.help + " Avoid the flag: it shows in process listings.")
    )
    var tokenKey: String?
    @Option(name: .customLong(Setting.tokenKeyFile.rawValue), help: ArgumentHelp(Setting.tokenKeyFile.help))
    var tokenKeyFile: String?
    @Option(name: .customLong(Setting.syncWorkers.rawValue), help: ArgumentHelp(Setting.syncWorkers.help))
    var syncWorkers: String?
    @Option(name: .customLong(Setting.syncInterval.rawValue), help: ArgumentHelp(Setting.syncInterval.help))
    var syncInterval: String?
    @Option(name: .customLong(Setting.reclaimPolicy.rawValue), help: ArgumentHelp(Setting.reclaimPolicy.help))
    var reclaimPolicy: String?
    @Option(name: .customLong(Setting.tlsCertFile.rawValue), help: ArgumentHelp(Setting.tlsCertFile.help))
    var tlsCertFile: String?
    @Option(name: .customLong(Setting.tlsKeyFile.rawValue), help: ArgumentHelp(Setting.tlsKeyFile.help))
    var tlsKeyFile: String?
    @Option(name: .customLong(Setting.allowPlaintext.rawValue), help: ArgumentHelp(Setting.allowPlaintext.help))
    var allowPlaintext: String?
    @Option(name: .customLong(Setting.gaugeInterval.rawValue), help: ArgumentHelp(Setting.gaugeInterval.help))
    var gaugeInterval: String?
    @Option(name: .customLong(Setting.notificationURL.rawValue), help: ArgumentHelp(Setting.notificationURL.help))
    var notificationURL: String?
    @Option(name: .customLong(Setting.notificationHost.rawValue), help: ArgumentHelp(Setting.notificationHost.help))
    var notificationHost: String?
    @Option(name: .customLong(Setting.notificationPort.rawValue), help: ArgumentHelp(Setting.notificationPort.help))
    var notificationPort: String?
    @Option(
        name: .customLong(Setting.notificationTLSCertFile.rawValue),
        help: ArgumentHelp(Setting.notificationTLSCertFile.help)
    )
    var notificationTLSCertFile: String?
    @Option(
        name: .customLong(Setting.notificationTLSKeyFile.rawValue),
        help: ArgumentHelp(Setting.notificationTLSKeyFile.help)
    )
    var notificationTLSKeyFile: String?
    @Option(name: .customLong(Setting.eventPollInterval.rawValue), help: ArgumentHelp(Setting.eventPollInterval.help))
    var eventPollInterval: String?
    @Option(
        name: .customLong(Setting.notifiedPollInterval.rawValue),
        help: ArgumentHelp(Setting.notifiedPollInterval.help)
    )
    var notifiedPollInterval: String?

    func resolve() throws -> ResolvedSettings {
        let given: [(Setting, String?)] = [
            (.host, self.host), (.port, self.port), (.metricsHost, self.metricsHost), (.metricsPort, self.metricsPort),
            (.databaseURL, self.databaseURL), (.dataDir, self.dataDir), (.databasePoolSize, self.databasePoolSize),
            (.databaseStatementTimeout, self.databaseStatementTimeout),
            (.migrationConcurrency, self.migrationConcurrency), (.maxFrameBytes, self.maxFrameBytes),
            (.frameBudgetBytes, self.frameBudgetBytes),
            (.maxCallsInFlight, self.maxCallsInFlight), (.maxConnections, self.maxConnections),
            (.authTimeout, self.authTimeout), (.idleTimeout, self.idleTimeout),
            (.maxCallDuration, self.maxCallDuration), (.shutdownGrace, self.shutdownGrace),
            (.eventLoopThreads, self.eventLoopThreads), (.logLevel, self.logLevel),
            (.callLogLevel, self.callLogLevel), (.bootstrapOperatorKey, self.bootstrapOperatorKey),
            (.appleBaseURL, self.appleBaseURL), (.tokenKey, self.tokenKey), (.tokenKeyFile, self.tokenKeyFile),
            (.syncWorkers, self.syncWorkers), (.syncInterval, self.syncInterval), (.reclaimPolicy, self.reclaimPolicy),
            (.tlsCertFile, self.tlsCertFile), (.tlsKeyFile, self.tlsKeyFile), (.allowPlaintext, self.allowPlaintext),
            (.gaugeInterval, self.gaugeInterval),
            (.notificationURL, self.notificationURL),
            (.notificationHost, self.notificationHost),
            (.notificationPort, self.notificationPort),
            (.notificationTLSCertFile, self.notificationTLSCertFile),
            (.notificationTLSKeyFile, self.notificationTLSKeyFile),
            (.eventPollInterval, self.eventPollInterval),
            (.notifiedPollInterval, self.notifiedPollInterval),
        ]
        var flags: [Setting: String] = [:]
        for case (let setting, let value?) in given { flags[setting] = value }
        return try ResolvedSettings(
            flags: flags,
            environment: ProcessInfo.processInfo.environment,
            configFile: self.configFile
        )
    }
}
