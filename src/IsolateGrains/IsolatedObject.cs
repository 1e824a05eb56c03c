using IsolateGrains.Engine;
using IsolateGrains.Protocol;

namespace IsolateGrains;

/// <summary>
/// An object that lives inside a sandbox; the host holds a handle to it. Its methods (public or
/// private) are invoked by name, with arguments copied in and results copied out; an
/// <see cref="IsolatedObject"/> passed as an argument arrives as the same guest object. Disposing it
/// (or letting it be finalized) releases the guest object.
/// </summary>
public sealed class IsolatedObject : IDisposable
{
    private readonly int _handle;
    private readonly int _generation;
    private int _released;

    internal IsolatedObject(IsolatedRuntime runtime, int handle, string typeName, string assemblyName, int generation)
    {
        Runtime = runtime;
        _handle = handle;
        TypeName = typeName;
        AssemblyName = assemblyName;
        _generation = generation;
    }

    /// <summary>Releases the guest object if the host forgot to.</summary>
    ~IsolatedObject() => Release();

    /// <summary>The runtime whose sandbox holds the object.</summary>
    public IsolatedRuntime Runtime { get; }

    /// <summary>The full name of the object's type inside the sandbox.</summary>
    public string TypeName { get; }

    /// <summary>The name of the assembly that defines the object's type.</summary>
    public string AssemblyName { get; }

    /// <summary>Calls a method for its effect.</summary>
    public void InvokeVoid(string methodName, params object?[] args) => Call(methodName, args ?? [], ResultMode.Value);

    /// <summary>Calls a method (overloads are chosen by argument count, then argument types) and returns a copy of its result.</summary>
    public TResult Invoke<TResult>(string methodName, params object?[] args) => GuestRequests.Deserialize<TResult>(Call(methodName, args ?? [], ResultMode.Value))!;

    /// <summary>Calls a method with one argument and returns a copy of its result.</summary>
    public TResult Invoke<T1, TResult>(string methodName, T1 arg1) => Invoke<TResult>(methodName, [arg1]);

    /// <summary>Calls a method with two arguments and returns a copy of its result.</summary>
    public TResult Invoke<T1, T2, TResult>(string methodName, T1 arg1, T2 arg2) => Invoke<TResult>(methodName, [arg1, arg2]);

    /// <summary>Calls a method with three arguments and returns a copy of its result.</summary>
    public TResult Invoke<T1, T2, T3, TResult>(string methodName, T1 arg1, T2 arg2, T3 arg3) => Invoke<TResult>(methodName, [arg1, arg2, arg3]);

    /// <summary>Calls a method with four arguments and returns a copy of its result.</summary>
    public TResult Invoke<T1, T2, T3, T4, TResult>(string methodName, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => Invoke<TResult>(methodName, [arg1, arg2, arg3, arg4]);

    /// <summary>Calls a method and returns a handle to its result, which stays in the sandbox (null for a null result).</summary>
    public IsolatedObject? InvokeHandle(string methodName, params object?[] args) => Runtime.ToObject(Call(methodName, args ?? [], ResultMode.Handle));

    /// <summary>Calls a method that may return a task, awaiting it without blocking a thread.</summary>
    public async Task InvokeVoidAsync(string methodName, object?[]? args = null, CancellationToken cancellationToken = default) =>
        await Runtime.InvokeMethodAsync(HandleFor(Runtime), null, Checked(methodName), args ?? [], ResultMode.Value, cancellationToken).ConfigureAwait(false);

    /// <summary>Calls a method that may return a task and returns a copy of the awaited result.</summary>
    public async Task<TResult> InvokeAsync<TResult>(string methodName, object?[]? args = null, CancellationToken cancellationToken = default) =>
        GuestRequests.Deserialize<TResult>(await Runtime.InvokeMethodAsync(HandleFor(Runtime), null, Checked(methodName), args ?? [], ResultMode.Value, cancellationToken).ConfigureAwait(false))!;

    /// <summary>Finds a method of this object's type to invoke later (on this or any other target).</summary>
    public IsolatedMethod FindMethod(string methodName, int parameterCount = -1) =>
        Runtime.GetMethod(AssemblyName, TypeName, methodName, parameterCount);

    /// <summary>Returns a copy of the whole object, deserialized on the host as <typeparamref name="T"/>.</summary>
    public T GetValue<T>() => GuestRequests.Deserialize<T>(Runtime.GetObjectValue(HandleFor(Runtime)))!;

    /// <summary>Releases the guest object.</summary>
    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc />
    public override string ToString() => $"IsolatedObject({TypeName} #{_handle} in {Runtime.Name})";

    /// <summary>The handle, checked to belong to <paramref name="runtime"/>'s current sandbox.</summary>
    internal int HandleFor(IsolatedRuntime runtime)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
        if (!ReferenceEquals(runtime, Runtime))
        {
            throw new IsolatedException($"{this} belongs to another sandbox; objects can only be passed within their own sandbox.");
        }
        if (_generation != runtime.Generation)
        {
            throw new IsolatedException($"{this} belonged to a sandbox that failed and was reset; the object no longer exists.");
        }
        return _handle;
    }

    private ReadOnlyMemory<byte>? Call(string methodName, object?[] args, ResultMode mode) =>
        Runtime.InvokeMethod(HandleFor(Runtime), null, Checked(methodName), args, mode);

    private static string Checked(string methodName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(methodName);
        return methodName;
    }

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            Runtime.QueueRelease(_handle, _generation);
        }
    }
}
