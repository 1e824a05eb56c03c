using IsolateGrains.Protocol;

namespace IsolateGrains;

/// <summary>
/// What callers write: <c>await grainFactory.GetGrain&lt;IIsolateGrain&gt;(id).Invoke(() =&gt; ...)</c>. The lambda
/// and the values it captures are serialized here, on the caller's side, into an invocation message;
/// errors come back as <see cref="IsolatedException"/>s with the guest's details, as in process.
/// </summary>
public static class IsolateGrainExtensions
{
    private static readonly IReadOnlySet<ulong> NoKnownKeys = new HashSet<ulong>();

    /// <summary>Runs <paramref name="action"/> in the grain's sandbox.</summary>
    public static async Task Invoke(this IIsolateGrain grain, Action action) =>
        await Send(grain, Delegate(action)).ConfigureAwait(false);

    /// <summary>Runs <paramref name="func"/> in the grain's sandbox and returns a copy of its result.</summary>
    public static async Task<TResult> Invoke<TResult>(this IIsolateGrain grain, Func<TResult> func) =>
        GuestRequests.Deserialize<TResult>(await Send(grain, Delegate(func)).ConfigureAwait(false))!;

    /// <summary>Runs asynchronous guest code in the grain's sandbox (the grain awaits it without blocking).</summary>
    public static async Task InvokeAsync(this IIsolateGrain grain, Func<Task> func) =>
        await Send(grain, Delegate(func)).ConfigureAwait(false);

    /// <summary>Runs asynchronous guest code in the grain's sandbox and returns a copy of its result.</summary>
    public static async Task<TResult> InvokeAsync<TResult>(this IIsolateGrain grain, Func<Task<TResult>> func) =>
        GuestRequests.Deserialize<TResult>(await Send(grain, Delegate(func)).ConfigureAwait(false))!;

    /// <summary>Creates a <typeparamref name="T"/> in the grain's sandbox with the constructor that fits <paramref name="args"/>.</summary>
    public static Task<IsolatedGrainObject> CreateObject<T>(this IIsolateGrain grain, params object?[] args) =>
        CreateObject(grain, typeof(T).Assembly.GetName().Name!, typeof(T).FullName!, args);

    /// <summary>Creates an object in the grain's sandbox by names (nested types as <c>Outer+Inner</c>).</summary>
    public static Task<IsolatedGrainObject> CreateObject(this IIsolateGrain grain, string assemblyName, string? @namespace, string typeName, params object?[] args) =>
        CreateObject(grain, assemblyName, string.IsNullOrEmpty(@namespace) ? typeName : @namespace + "." + typeName, args);

    private static async Task<IsolatedGrainObject> CreateObject(IIsolateGrain grain, string assemblyName, string fullTypeName, object?[] args)
    {
        var reply = await Send(grain, GuestRequests.CreateObject(assemblyName, fullTypeName, args ?? [], IsolatedGrainObject.HandleIn(grain))).ConfigureAwait(false);
        return IsolatedGrainObject.FromReply(grain, reply) ?? throw new IsolatedException("The sandbox returned no object.");
    }

    /// <summary>Sends an encoded request and decodes the final reply (throws the guest's exception).</summary>
    internal static async Task<ReadOnlyMemory<byte>?> Send(IIsolateGrain grain, byte[] request)
    {
        ArgumentNullException.ThrowIfNull(grain);
        var reply = await grain.Execute(new IsolateRequest(request)).ConfigureAwait(false);
        return GuestRequests.ReadReply(reply.Payload);
    }

    private static byte[] Delegate(Delegate @delegate) => GuestRequests.InvokeDelegate(@delegate, NoKnownKeys, out _);
}
