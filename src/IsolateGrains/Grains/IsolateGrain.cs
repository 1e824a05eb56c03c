using IsolateGrains.Hosting;
using IsolateGrains.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Core;
using Orleans.Runtime;

namespace IsolateGrains.Grains;

/// <summary>
/// An Orleans grain that owns one sandbox. It runs the serialized requests it receives, binds callback
/// names to observers and grains, and keeps the sandbox durable: the sandbox's snapshot is saved to grain
/// storage (per <see cref="SnapshotPolicy"/>), carried along when Orleans migrates the activation, and
/// restored on the next activation. A fault that kills the sandbox restores the last saved snapshot.
/// </summary>
/// <remarks>
/// Placement: Orleans' default, resource-optimized placement, which weighs each silo's memory and CPU —
/// what sandboxes cost. (Activation-count placement would also suit, but Orleans' directors for it do not
/// honour migration targets, and moving sandboxes between silos is part of the design.)
/// </remarks>
public sealed class IsolateGrain : Grain, IIsolateGrain, IGrainMigrationParticipant
{
    private const string MigrationKey = "isolategrains.snapshot";
    private readonly IsolateSandboxHost _sandboxHost;
    private readonly IsolateGrainsOptions _options;
    private readonly IPersistentState<IsolateGrainState> _state;
    private readonly ILogger _logger;
    private readonly Dictionary<string, IIsolateCallback> _observers = new(StringComparer.Ordinal);
    private IsolatedRuntime? _runtime;
    private byte[]? _rehydratedSnapshot;
    private string _restoredFrom = "new";
    private bool _dirty;
    private IGrainTimer? _snapshotTimer;

    /// <summary>Creates the grain (Orleans does).</summary>
    public IsolateGrain(
        IsolateSandboxHost sandboxHost,
        IOptions<IsolateGrainsOptions> options,
        IPersistentStateFactory stateFactory,
        IGrainContext grainContext,
        ILogger<IsolateGrain> logger)
    {
        _sandboxHost = sandboxHost;
        _options = options.Value;
        _logger = logger;
        _state = stateFactory.Create<IsolateGrainState>(grainContext, new PersistentStateAttribute("sandbox", _options.StorageName));
    }

    private IsolatedRuntime Runtime => _runtime ?? throw new InvalidOperationException("The isolate grain is not active.");

    private string Name => "isolate/" + this.GetPrimaryKeyString();

    /// <inheritdoc />
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var snapshot = _rehydratedSnapshot ?? _state.State.Snapshot;
        _restoredFrom = _rehydratedSnapshot is not null ? "migration" : snapshot is not null ? "storage" : "new";
        _rehydratedSnapshot = null;
        _runtime = CreateRuntime(snapshot);
        if (_options.SnapshotPolicy == SnapshotPolicy.Periodic)
        {
            _snapshotTimer = this.RegisterGrainTimer(SaveIfDirtyAsync, _options.SnapshotInterval, _options.SnapshotInterval);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _snapshotTimer?.Dispose();
        try
        {
            if (_dirty && _runtime is not null)
            {
                await SaveSnapshotCoreAsync();
            }
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Saving the snapshot of {Grain} on deactivation failed.", Name);
        }
        finally
        {
            // A migrating activation is dehydrated after this: OnDehydrate takes the snapshot and disposes.
            if (reason.ReasonCode != DeactivationReasonCode.Migrating)
            {
                _runtime?.Dispose();
                _runtime = null;
            }
        }
    }

    /// <inheritdoc />
    public async Task<IsolateReply> Execute(IsolateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Payload is null)
        {
            return new IsolateReply(GuestRequests.BadRequestReply("The request has no payload."));
        }
        byte[] reply;
        try
        {
            reply = await Runtime.ExecuteAsync(request.Payload);
        }
        catch (IsolatedException e) when (e.IsFatal)
        {
            // The runtime replaced the dead sandbox with a fresh one; bring back the last saved state instead.
            var restored = RestoreLastSnapshot();
            var message = e.Message + (restored ? " The grain restored its last saved snapshot." : " The grain had no saved snapshot and starts fresh.");
            return new IsolateReply(GuestRequests.BadRequestReply(message));
        }
        catch (IsolatedException e)
        {
            return new IsolateReply(GuestRequests.BadRequestReply(e.Message));
        }
        _dirty = true;
        // A call that re-entered while an outer call's guest code awaits cannot be snapshotted on its own
        // (the outer call's caller waits here); the outer call saves when it completes.
        if (_options.SnapshotPolicy == SnapshotPolicy.WriteThrough && !Runtime.HasRunningOperations)
        {
            await SaveSnapshotCoreAsync();
        }
        return new IsolateReply(reply);
    }

    /// <inheritdoc />
    public Task BindCallback(string name, IIsolateCallback observer)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(observer);
        _observers[name] = observer;
        BindRaw(name, observer.Invoke);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task BindCallbackGrain(string name, IIsolateCallbackGrain grain)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(grain);
        _state.State.CallbackGrains[name] = grain;
        BindRaw(name, grain.Invoke);
        await _state.WriteStateAsync();
    }

    /// <inheritdoc />
    public async Task UnbindCallback(string name)
    {
        _observers.Remove(name);
        Runtime.UnregisterCallback(name);
        if (_state.State.CallbackGrains.Remove(name))
        {
            await _state.WriteStateAsync();
        }
    }

    /// <inheritdoc />
    public Task<IsolateGrainStatus> GetStatus() => Task.FromResult(new IsolateGrainStatus(
        GrainContext.Address.SiloAddress?.ToString() ?? RuntimeIdentity, Runtime.MemoryBytes, Runtime.ResetCount, _state.State.Snapshot?.LongLength, _restoredFrom));

    /// <inheritdoc />
    public Task SaveSnapshot() => SaveSnapshotCoreAsync();

    /// <inheritdoc />
    public async Task Fork(string targetKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(targetKey);
        if (targetKey == this.GetPrimaryKeyString())
        {
            throw new ArgumentException("A grain cannot fork into itself.", nameof(targetKey));
        }
        var snapshot = Runtime.CaptureSnapshot();
        await GrainFactory.GetGrain<IIsolateGrain>(targetKey).RestoreSnapshot(snapshot);
    }

    /// <inheritdoc />
    public async Task RestoreSnapshot(byte[] snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var replacement = CreateRuntime(snapshot);
        _runtime?.Dispose();
        _runtime = replacement;
        _restoredFrom = "fork";
        _state.State.Snapshot = snapshot;
        await _state.WriteStateAsync();
        _dirty = false;
    }

    /// <inheritdoc />
    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void OnDehydrate(IDehydrationContext dehydrationContext)
    {
        if (_runtime is not null)
        {
            dehydrationContext.TryAddValue(MigrationKey, _runtime.CaptureSnapshot());
            _runtime.Dispose();
            _runtime = null;
        }
    }

    /// <inheritdoc />
    public void OnRehydrate(IRehydrationContext rehydrationContext)
    {
        if (rehydrationContext.TryGetValue(MigrationKey, out byte[]? snapshot))
        {
            _rehydratedSnapshot = snapshot;
        }
    }

    private IsolatedRuntime CreateRuntime(byte[]? snapshot)
    {
        var runtime = snapshot is null
            ? new IsolatedRuntime(_sandboxHost.Host, Name)
            : IsolatedRuntime.Restore(_sandboxHost.Host, snapshot, Name);
        // Guest code, and the grain calls its callbacks make, run in this activation's context.
        runtime.Scheduler = TaskScheduler.Current;
        foreach (var (name, observer) in _observers)
        {
            runtime.RegisterRawCallback(name, CallTarget(name, observer.Invoke));
        }
        foreach (var (name, grain) in _state.State.CallbackGrains)
        {
            runtime.RegisterRawCallback(name, CallTarget(name, grain.Invoke));
        }
        return runtime;
    }

    private void BindRaw(string name, Func<IsolateCallbackRequest, Task<IsolateCallbackReply>> invoke) =>
        Runtime.RegisterRawCallback(name, CallTarget(name, invoke));

    /// <summary>
    /// A callback that calls a grain or observer. The call allows call-chain reentrancy, so the target may
    /// call back into this grain while the guest awaits it (without that, Orleans would deadlock until the
    /// response timeout).
    /// </summary>
    private static Callbacks.RawCallback CallTarget(string name, Func<IsolateCallbackRequest, Task<IsolateCallbackReply>> invoke) => async arguments =>
    {
        using var reentrancy = RequestContext.AllowCallChainReentrancy();
        var reply = await invoke(new IsolateCallbackRequest(name, arguments.Select(a => a.ToArray()).ToArray()));
        return (reply.Result, reply.Error);
    };

    private bool RestoreLastSnapshot()
    {
        var snapshot = _state.State.Snapshot;
        if (snapshot is null)
        {
            return false;
        }
        try
        {
            var replacement = CreateRuntime(snapshot);
            _runtime?.Dispose();
            _runtime = replacement;
            _restoredFrom = "storage";
            _dirty = false;
            return true;
        }
        catch (IsolatedException e)
        {
            _logger.LogError(e, "Restoring {Grain} from its snapshot failed; it continues with a fresh sandbox.", Name);
            return false;
        }
    }

    private async Task SaveIfDirtyAsync(CancellationToken cancellationToken)
    {
        if (_dirty)
        {
            await SaveSnapshotCoreAsync();
        }
    }

    private async Task SaveSnapshotCoreAsync()
    {
        _state.State.Snapshot = Runtime.CaptureSnapshot();
        await _state.WriteStateAsync();
        _dirty = false;
    }
}
