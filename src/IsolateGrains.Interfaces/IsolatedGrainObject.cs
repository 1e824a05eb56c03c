using IsolateGrains.Protocol;

namespace IsolateGrains;

/// <summary>
/// An object that lives in an isolate grain's sandbox, seen from a client or another grain. It is a
/// grain reference plus a handle, so it can be stored and passed around; the object stays in the
/// sandbox and survives deactivation and migration with the sandbox's snapshot.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class IsolatedGrainObject
{
    /// <summary>Creates a reference (normally done by <see cref="IsolateGrainExtensions.CreateObject{T}"/>).</summary>
    public IsolatedGrainObject(IIsolateGrain grain, int handle, string typeName, string assemblyName)
    {
        Grain = grain;
        Handle = handle;
        TypeName = typeName;
        AssemblyName = assemblyName;
    }

    /// <summary>The grain whose sandbox holds the object.</summary>
    [Id(0)]
    public IIsolateGrain Grain { get; }

    /// <summary>The object's handle in that sandbox.</summary>
    [Id(1)]
    public int Handle { get; }

    /// <summary>The full name of the object's type.</summary>
    [Id(2)]
    public string TypeName { get; }

    /// <summary>The assembly that defines the type.</summary>
    [Id(3)]
    public string AssemblyName { get; }

    /// <summary>Calls a method for its effect (a task it returns is awaited by the grain).</summary>
    public async Task InvokeVoid(string methodName, params object?[] args) =>
        await Call(methodName, args, ResultMode.Value).ConfigureAwait(false);

    /// <summary>Calls a method (chosen by name, argument count and types) and returns a copy of its (awaited) result.</summary>
    public async Task<TResult> Invoke<TResult>(string methodName, params object?[] args) =>
        GuestRequests.Deserialize<TResult>(await Call(methodName, args, ResultMode.Value).ConfigureAwait(false))!;

    /// <summary>Calls a method and returns a reference to its result, which stays in the sandbox.</summary>
    public async Task<IsolatedGrainObject?> InvokeHandle(string methodName, params object?[] args) =>
        FromReply(Grain, await Call(methodName, args, ResultMode.Handle).ConfigureAwait(false));

    /// <summary>Returns a copy of the whole object.</summary>
    public async Task<T> GetValue<T>() =>
        GuestRequests.Deserialize<T>(await IsolateGrainExtensions.Send(Grain, GuestRequests.GetObjectValue(Handle)).ConfigureAwait(false))!;

    /// <summary>Releases the object in the sandbox.</summary>
    public async Task Release() =>
        await IsolateGrainExtensions.Send(Grain, GuestRequests.ReleaseObjects([Handle])).ConfigureAwait(false);

    /// <inheritdoc />
    public override string ToString() => $"IsolatedGrainObject({TypeName} #{Handle} in {Grain.GetPrimaryKeyString()})";

    private Task<ReadOnlyMemory<byte>?> Call(string methodName, object?[] args, ResultMode mode)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(methodName);
        return IsolateGrainExtensions.Send(Grain, GuestRequests.InvokeMethod(Handle, null, methodName, args ?? [], mode, HandleIn(Grain)));
    }

    /// <summary>Recognizes arguments that are objects of the same grain's sandbox (passed by reference).</summary>
    internal static Func<object, int?> HandleIn(IIsolateGrain grain) => argument => argument switch
    {
        IsolatedGrainObject other when other.Grain.GetGrainId() == grain.GetGrainId() => other.Handle,
        IsolatedGrainObject other => throw new IsolatedException($"{other} belongs to another grain's sandbox; objects can only be passed within their own sandbox."),
        _ => null,
    };

    /// <summary>Reads a <c>[handle, typeName, assembly]</c> reply.</summary>
    internal static IsolatedGrainObject? FromReply(IIsolateGrain grain, ReadOnlyMemory<byte>? reply)
    {
        var value = GuestRequests.Deserialize<(int Handle, string TypeName, string AssemblyName)?>(reply);
        return value is { } handle ? new IsolatedGrainObject(grain, handle.Handle, handle.TypeName, handle.AssemblyName) : null;
    }
}
