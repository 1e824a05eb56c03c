using System.Collections.Concurrent;
using IsolateGrains.Engine;
using IsolateGrains.Protocol;

namespace IsolateGrains;

public sealed partial class IsolatedRuntime
{
    private readonly ConcurrentQueue<(int Handle, int Generation)> _releases = new();

    /// <summary>Creates a <typeparamref name="T"/> inside the sandbox with the constructor that fits <paramref name="args"/>.</summary>
    public IsolatedObject CreateObject<T>(params object?[] args) =>
        CreateObject(typeof(T).Assembly.GetName().Name!, typeof(T).FullName!, args);

    /// <summary>
    /// Creates an object inside the sandbox by type name (nested types as <c>Outer+Inner</c>) with the
    /// constructor that fits <paramref name="args"/> (by count, then by argument types).
    /// </summary>
    /// <exception cref="IsolatedException">The assembly, the type or a fitting constructor was not found, or the constructor threw.</exception>
    public IsolatedObject CreateObject(string assemblyName, string? @namespace, string typeName, params object?[] args)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(assemblyName);
        ArgumentException.ThrowIfNullOrWhiteSpace(typeName);
        return CreateObject(assemblyName, string.IsNullOrEmpty(@namespace) ? typeName : @namespace + "." + typeName, args ?? []);
    }

    private IsolatedObject CreateObject(string assemblyName, string fullTypeName, object?[] args) => Call(sandbox =>
        ReadHandle(sandbox, sandbox.Call(GuestRequests.CreateObject(assemblyName, fullTypeName, args, HandleOf))));

    /// <summary>
    /// Copies <paramref name="value"/> into the sandbox (serialize on the host, deserialize inside) and
    /// returns a handle to the copy. A type whose deserialization throws gives an <see cref="IsolatedException"/>
    /// carrying that exception's message.
    /// </summary>
    public IsolatedObject CopyObject<T>(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return Call(sandbox => ReadHandle(sandbox, sandbox.Call(GuestRequests.CopyObject(value.GetType(), value))));
    }

    /// <summary>Finds a method of <paramref name="type"/> (any visibility, static or instance) to invoke later on any target.</summary>
    /// <param name="type">The declaring type.</param>
    /// <param name="methodName">The method's name.</param>
    /// <param name="parameterCount">The number of parameters, to pick among overloads (-1: the name must be unique).</param>
    public IsolatedMethod GetMethod(Type type, string methodName, int parameterCount = -1)
    {
        ArgumentNullException.ThrowIfNull(type);
        return GetMethod(type.Assembly.GetName().Name!, type.FullName!, methodName, parameterCount);
    }

    /// <summary>
    /// Finds a method by names: the assembly, the namespace, the declaring (outer) type for nested types
    /// or null, the type and the method.
    /// </summary>
    public IsolatedMethod GetMethod(string assemblyName, string? @namespace, string? declaringTypeName, string typeName, string methodName, int parameterCount = -1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(typeName);
        var prefix = string.IsNullOrEmpty(@namespace) ? "" : @namespace + ".";
        var fullName = string.IsNullOrEmpty(declaringTypeName) ? prefix + typeName : prefix + declaringTypeName + "+" + typeName;
        return GetMethod(assemblyName, fullName, methodName, parameterCount);
    }

    /// <summary>Finds a method by assembly, full type name and method name.</summary>
    internal IsolatedMethod GetMethod(string assemblyName, string fullTypeName, string methodName, int parameterCount)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(assemblyName);
        ArgumentException.ThrowIfNullOrWhiteSpace(methodName);
        return Call(sandbox =>
        {
            var reply = GuestRequests.ReadReply(sandbox.Call(GuestRequests.ResolveMethod(assemblyName, fullTypeName, methodName, parameterCount)));
            var (id, parameters, isStatic) = GuestRequests.Deserialize<(int, int, bool)>(reply);
            return new IsolatedMethod(this, id, ResetCount, fullTypeName, methodName, parameters, isStatic);
        });
    }

    /// <summary>Invokes a method on an object (or a static method) and returns the decoded reply.</summary>
    internal ReadOnlyMemory<byte>? InvokeMethod(int? target, int? methodId, string? methodName, object?[] args, ResultMode mode) =>
        Call(sandbox => GuestRequests.ReadReply(sandbox.Call(GuestRequests.InvokeMethod(target, methodId, methodName, args, mode, HandleOf))));

    /// <summary>Invokes a method that may be asynchronous; waits for its task without blocking a thread.</summary>
    internal async Task<ReadOnlyMemory<byte>> InvokeMethodAsync(int? target, int? methodId, string? methodName, object?[] args, ResultMode mode, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(sandbox =>
            ReadReplyTrackingPending(sandbox.Call(GuestRequests.InvokeMethod(target, methodId, methodName, args, mode, HandleOf))), cancellationToken).ConfigureAwait(false);
        return await AwaitReplyAsync(reply, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a copy of the object behind a handle.</summary>
    internal ReadOnlyMemory<byte>? GetObjectValue(int handle) =>
        Call(sandbox => GuestRequests.ReadReply(sandbox.Call(GuestRequests.GetObjectValue(handle))));

    /// <summary>Turns a <c>[handle, typeName]</c> reply into an <see cref="IsolatedObject"/>; null reply, null object.</summary>
    internal IsolatedObject? ToObject(ReadOnlyMemory<byte>? reply)
    {
        var value = GuestRequests.Deserialize<(int Handle, string TypeName, string AssemblyName)?>(reply);
        return value is { } handle ? new IsolatedObject(this, handle.Handle, handle.TypeName, handle.AssemblyName, ResetCount) : null;
    }

    private IsolatedObject ReadHandle(Sandbox sandbox, byte[] reply) =>
        ToObject(GuestRequests.ReadReply(reply)) ?? throw new IsolatedException("The sandbox returned no object.");

    /// <summary>The handle an argument stands for, if it is an <see cref="IsolatedObject"/> (checked to belong here).</summary>
    private int? HandleOf(object argument) => argument is IsolatedObject isolated ? isolated.HandleFor(this) : null;

    /// <summary>The current sandbox generation: objects from an older one are gone.</summary>
    internal int Generation => ResetCount;

    /// <summary>Queues a handle for release with the next call (finalizers must not call into the sandbox).</summary>
    internal void QueueRelease(int handle, int generation) => _releases.Enqueue((handle, generation));

    private void FlushReleases(Sandbox sandbox)
    {
        if (_releases.IsEmpty)
        {
            return;
        }
        var handles = new List<int>();
        while (_releases.TryDequeue(out var release))
        {
            if (release.Generation == ResetCount)
            {
                handles.Add(release.Handle);
            }
        }
        if (handles.Count > 0)
        {
            GuestRequests.ReadReply(sandbox.Call(GuestRequests.ReleaseObjects(handles)));
        }
    }
}
