using System.Reflection;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// How a host callback delegate takes its arguments and gives its result across the boundary: each
/// argument is a MessagePack value read as the delegate's parameter type; the result is written as its
/// return type, or as the awaited type when it returns a task. Shared by in-process runtimes and by
/// grain callbacks, so both behave the same.
/// </summary>
internal sealed class CallbackSignature
{
    private CallbackSignature(Delegate callback)
    {
        Callback = callback;
        var method = callback.Method;
        ParameterTypes = method.GetParameters().Select(p => p.ParameterType).ToArray();
        var returnType = method.ReturnType;
        IsAsync = returnType == typeof(Task) || returnType == typeof(ValueTask) ||
            (returnType.IsGenericType && (returnType.GetGenericTypeDefinition() == typeof(Task<>) || returnType.GetGenericTypeDefinition() == typeof(ValueTask<>)));
        ResultType = !IsAsync ? returnType
            : returnType.IsGenericType ? returnType.GetGenericArguments()[0]
            : typeof(void);
    }

    /// <summary>The delegate.</summary>
    public Delegate Callback { get; }

    /// <summary>The parameter types arguments are read as.</summary>
    public Type[] ParameterTypes { get; }

    /// <summary>The type the result is written as (<see cref="void"/> for none).</summary>
    public Type ResultType { get; }

    /// <summary>True when the delegate returns a task to await.</summary>
    public bool IsAsync { get; }

    /// <summary>Describes <paramref name="callback"/>.</summary>
    public static CallbackSignature For(Delegate callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return new CallbackSignature(callback);
    }

    /// <summary>Reads the arguments; on failure returns false with a message for the guest that names the problem.</summary>
    public bool TryReadArguments(string name, IReadOnlyList<ReadOnlyMemory<byte>> arguments, out object?[] values, out string failure)
    {
        values = [];
        failure = "";
        if (arguments.Count != ParameterTypes.Length)
        {
            failure = $"Host callback '{name}' takes {ParameterTypes.Length} argument(s); the guest passed {arguments.Count}.";
            return false;
        }
        values = new object?[arguments.Count];
        for (var i = 0; i < values.Length; i++)
        {
            try
            {
                values[i] = MessagePackSerializer.Deserialize(ParameterTypes[i], arguments[i], IsolatedSerializer.Options);
            }
            catch (MessagePackSerializationException e)
            {
                failure = $"Argument {i + 1} of host callback '{name}' could not be read as {ParameterTypes[i].Name}: {e.InnerException?.Message ?? e.Message}";
                return false;
            }
        }
        return true;
    }

    /// <summary>Calls the delegate and returns what it returned (a task is not awaited); its exceptions propagate unwrapped.</summary>
    public object? Invoke(object?[] values)
    {
        try
        {
            return Callback.DynamicInvoke(values);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    /// <summary>Calls the delegate and awaits a task it returns; the result is the (awaited) value.</summary>
    public async Task<object?> InvokeAsync(object?[] values)
    {
        var result = Invoke(values);
        if (!IsAsync || result is null)
        {
            return result;
        }
        var task = result switch
        {
            Task plain => plain,
            ValueTask valueTask => valueTask.AsTask(),
            _ => (Task)result.GetType().GetMethod(nameof(ValueTask<int>.AsTask))!.Invoke(result, null)!,
        };
        await task.ConfigureAwait(false);
        return ResultType == typeof(void) ? null : task.GetType().GetProperty(nameof(Task<int>.Result))!.GetValue(task);
    }

    /// <summary>Writes a result as <see cref="ResultType"/> (nil for none).</summary>
    public byte[] SerializeResult(object? value) =>
        ResultType == typeof(void) ? [0xC0] : MessagePackSerializer.Serialize(ResultType, value, IsolatedSerializer.Options);
}
