using IsolateGrains.Engine;
using IsolateGrains.Protocol;

namespace IsolateGrains;

/// <summary>
/// A method inside a sandbox, found once (<see cref="IsolatedRuntime.GetMethod(Type, string, int)"/> or
/// <see cref="IsolatedObject.FindMethod"/>) and invocable many times, on any target object of a fitting
/// type (or none, for static methods).
/// </summary>
public sealed class IsolatedMethod
{
    private readonly int _id;
    private readonly int _generation;

    internal IsolatedMethod(IsolatedRuntime runtime, int id, int generation, string typeName, string name, int parameterCount, bool isStatic)
    {
        Runtime = runtime;
        _id = id;
        _generation = generation;
        TypeName = typeName;
        Name = name;
        ParameterCount = parameterCount;
        IsStatic = isStatic;
    }

    /// <summary>The runtime whose sandbox holds the method.</summary>
    public IsolatedRuntime Runtime { get; }

    /// <summary>The full name of the declaring type.</summary>
    public string TypeName { get; }

    /// <summary>The method's name.</summary>
    public string Name { get; }

    /// <summary>How many parameters it takes.</summary>
    public int ParameterCount { get; }

    /// <summary>True for a static method (invoke it with a null target).</summary>
    public bool IsStatic { get; }

    /// <summary>Invokes the method for its effect.</summary>
    public void InvokeVoid(IsolatedObject? target, params object?[] args) => Call(target, args ?? []);

    /// <summary>Invokes the method and returns a copy of its result.</summary>
    public TResult Invoke<TResult>(IsolatedObject? target, params object?[] args) => GuestRequests.Deserialize<TResult>(Call(target, args ?? []))!;

    /// <summary>Invokes the method with one argument.</summary>
    public TResult Invoke<T1, TResult>(IsolatedObject? target, T1 arg1) => Invoke<TResult>(target, [arg1]);

    /// <summary>Invokes the method with two arguments.</summary>
    public TResult Invoke<T1, T2, TResult>(IsolatedObject? target, T1 arg1, T2 arg2) => Invoke<TResult>(target, [arg1, arg2]);

    /// <summary>Invokes the method with three arguments.</summary>
    public TResult Invoke<T1, T2, T3, TResult>(IsolatedObject? target, T1 arg1, T2 arg2, T3 arg3) => Invoke<TResult>(target, [arg1, arg2, arg3]);

    /// <summary>Invokes the method with four arguments.</summary>
    public TResult Invoke<T1, T2, T3, T4, TResult>(IsolatedObject? target, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => Invoke<TResult>(target, [arg1, arg2, arg3, arg4]);

    /// <summary>Invokes a method that may return a task and returns a copy of the awaited result.</summary>
    public async Task<TResult> InvokeAsync<TResult>(IsolatedObject? target, object?[]? args = null, CancellationToken cancellationToken = default) =>
        GuestRequests.Deserialize<TResult>(await Runtime.InvokeMethodAsync(TargetHandle(target), CheckedId(), null, args ?? [], ResultMode.Value, cancellationToken).ConfigureAwait(false))!;

    /// <inheritdoc />
    public override string ToString() => $"IsolatedMethod({TypeName}.{Name}/{ParameterCount})";

    private ReadOnlyMemory<byte>? Call(IsolatedObject? target, object?[] args) =>
        Runtime.InvokeMethod(TargetHandle(target), CheckedId(), null, args, ResultMode.Value);

    private int? TargetHandle(IsolatedObject? target) => target?.HandleFor(Runtime);

    private int CheckedId()
    {
        if (_generation != Runtime.Generation)
        {
            throw new IsolatedException($"{this} was found in a sandbox that failed and was reset; find it again.");
        }
        return _id;
    }
}
