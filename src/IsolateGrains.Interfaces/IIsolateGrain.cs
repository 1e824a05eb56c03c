namespace IsolateGrains;

/// <summary>
/// A sandbox as an Orleans grain: each activation owns one WebAssembly sandbox. Requests are
/// serialized invocation messages (built on the caller's side by <see cref="IsolateGrainExtensions"/>,
/// so a client needs no WebAssembly engine); the sandbox's whole memory is saved as a snapshot in grain
/// storage, so its statics and objects survive deactivation, silo loss and migration.
/// </summary>
/// <remarks>
/// Requests to one grain run one at a time. While guest code awaits an asynchronous host callback, the
/// callback's call chain may call back into this grain (Orleans call-chain reentrancy); that call runs in
/// the sandbox between the awaiting code's steps.
/// </remarks>
public interface IIsolateGrain : IGrainWithStringKey
{
    /// <summary>Runs one request in the sandbox and returns the guest's final reply.</summary>
    Task<IsolateReply> Execute(IsolateRequest request);

    /// <summary>Binds a callback name the guest calls (<c>DotNetIsolatorHost.InvokeAsync</c>) to a client observer.</summary>
    Task BindCallback(string name, IIsolateCallback observer);

    /// <summary>Binds a callback name to a grain; the binding is saved with the grain's state.</summary>
    Task BindCallbackGrain(string name, IIsolateCallbackGrain grain);

    /// <summary>Removes a callback binding.</summary>
    Task UnbindCallback(string name);

    /// <summary>Where the grain runs and what its sandbox holds.</summary>
    Task<IsolateGrainStatus> GetStatus();

    /// <summary>Saves the sandbox's snapshot to grain storage now.</summary>
    Task SaveSnapshot();

    /// <summary>
    /// Creates (or replaces) the isolate grain <paramref name="targetKey"/> as a copy of this one's
    /// sandbox; from then on the two diverge independently.
    /// </summary>
    Task Fork(string targetKey);

    /// <summary>Replaces this grain's sandbox with one restored from <paramref name="snapshot"/> and saves it.</summary>
    Task RestoreSnapshot(byte[] snapshot);

    /// <summary>Asks Orleans to deactivate this grain when idle (its snapshot is saved first).</summary>
    Task Deactivate();
}

/// <summary>A serialized request for an isolate grain's sandbox.</summary>
[GenerateSerializer, Immutable]
public sealed class IsolateRequest
{
    /// <summary>Creates a request.</summary>
    public IsolateRequest(byte[] payload) => Payload = payload;

    /// <summary>The guest wire request (a lambda with its captured values, an object creation, a method call).</summary>
    [Id(0)]
    public byte[] Payload { get; }
}

/// <summary>The guest's reply to an <see cref="IsolateRequest"/>.</summary>
[GenerateSerializer, Immutable]
public sealed class IsolateReply
{
    /// <summary>Creates a reply.</summary>
    public IsolateReply(byte[] payload) => Payload = payload;

    /// <summary>The guest wire reply: a serialized result, or the guest exception.</summary>
    [Id(0)]
    public byte[] Payload { get; }
}

/// <summary>What an isolate grain reports about itself.</summary>
/// <param name="Silo">The silo the activation runs on.</param>
/// <param name="MemoryBytes">The sandbox's linear memory size.</param>
/// <param name="ResetCount">How many times a fault made it start over.</param>
/// <param name="SnapshotBytes">The size of the last saved snapshot, if any.</param>
/// <param name="RestoredFrom">Where the current sandbox came from: "new", "storage", "migration" or "fork".</param>
[GenerateSerializer, Immutable]
public sealed record IsolateGrainStatus(
    [property: Id(0)] string Silo,
    [property: Id(1)] long MemoryBytes,
    [property: Id(2)] int ResetCount,
    [property: Id(3)] long? SnapshotBytes,
    [property: Id(4)] string RestoredFrom);
