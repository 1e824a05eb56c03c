namespace IsolateGrains;

public sealed partial class IsolatedRuntime
{
    /// <summary>
    /// Lets guest code call <paramref name="callback"/> by name with <c>DotNetIsolatorHost.Invoke</c>,
    /// <c>Invoke&lt;T&gt;</c>, <c>InvokeRaw</c> (byte arrays in and out) or <c>InvokeAsync</c>. Arguments are
    /// read as the callback's parameter types; a callback returning a task is awaited (without blocking
    /// a thread when the guest uses <c>InvokeAsync</c>). If it throws, the exception is logged on the host
    /// and the guest gets a <c>HostCallbackException</c> that does not contain its message.
    /// </summary>
    /// <remarks>
    /// A synchronous callback must not call back into this same runtime (that is refused with an
    /// <see cref="IsolatedException"/>); an asynchronous one may, since it waits for the sandbox's turn.
    /// </remarks>
    public IsolatedRuntime RegisterCallback(string name, Delegate callback)
    {
        _callbacks.Register(name, callback);
        return this;
    }

    /// <summary>Registers a callback with no parameters and no result.</summary>
    public IsolatedRuntime RegisterCallback(string name, Action callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with one parameter and no result.</summary>
    public IsolatedRuntime RegisterCallback<T1>(string name, Action<T1> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with two parameters and no result.</summary>
    public IsolatedRuntime RegisterCallback<T1, T2>(string name, Action<T1, T2> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with three parameters and no result.</summary>
    public IsolatedRuntime RegisterCallback<T1, T2, T3>(string name, Action<T1, T2, T3> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with four parameters and no result.</summary>
    public IsolatedRuntime RegisterCallback<T1, T2, T3, T4>(string name, Action<T1, T2, T3, T4> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with no parameters and a result.</summary>
    public IsolatedRuntime RegisterCallback<TResult>(string name, Func<TResult> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with one parameter and a result.</summary>
    public IsolatedRuntime RegisterCallback<T1, TResult>(string name, Func<T1, TResult> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with two parameters and a result.</summary>
    public IsolatedRuntime RegisterCallback<T1, T2, TResult>(string name, Func<T1, T2, TResult> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with three parameters and a result.</summary>
    public IsolatedRuntime RegisterCallback<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, TResult> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback with four parameters and a result.</summary>
    public IsolatedRuntime RegisterCallback<T1, T2, T3, T4, TResult>(string name, Func<T1, T2, T3, T4, TResult> callback) => RegisterCallback(name, (Delegate)callback);

    /// <summary>Registers a callback served asynchronously from raw MessagePack values (how grains bind names to grain references).</summary>
    internal IsolatedRuntime RegisterRawCallback(string name, Callbacks.RawCallback callback)
    {
        _callbacks.RegisterRaw(name, callback);
        return this;
    }

    /// <summary>Removes a callback; returns whether it was registered.</summary>
    public bool UnregisterCallback(string name) => _callbacks.Unregister(name);
}
