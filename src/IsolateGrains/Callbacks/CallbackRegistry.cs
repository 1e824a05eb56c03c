using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;

namespace IsolateGrains.Callbacks;

/// <summary>
/// The host callbacks one sandbox may call by name. Arguments arrive as MessagePack values and are
/// read as the callback's parameter types; results go back as the callback's return type (the
/// awaited type for tasks). A callback that throws is logged here; the guest only learns that the
/// call failed, never the host exception's message.
/// </summary>
internal sealed class CallbackRegistry(ILogger logger)
{
    private readonly ConcurrentDictionary<string, Callback> _callbacks = new(StringComparer.Ordinal);

    /// <summary>Registers (or replaces) a callback.</summary>
    public void Register(string name, Delegate callback)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(callback);
        var method = callback.Method;
        var returnType = method.ReturnType;
        var resultType = TaskResultType(returnType);
        _callbacks[name] = new Callback(callback, method.GetParameters().Select(p => p.ParameterType).ToArray(), returnType, resultType);
    }

    /// <summary>Removes a callback; returns whether it existed.</summary>
    public bool Unregister(string name) => _callbacks.TryRemove(name, out _);

    /// <summary>The registered names.</summary>
    public IReadOnlyCollection<string> Names => _callbacks.Keys.ToArray();

    /// <summary>Runs a callback to completion (blocking on a task it returns) and encodes the reply for the guest.</summary>
    public byte[] Invoke(string name, IReadOnlyList<ReadOnlyMemory<byte>> arguments)
    {
        if (!TryPrepare(name, arguments, out var callback, out var values, out var failure))
        {
            return Failure(failure);
        }
        try
        {
            var result = callback.Delegate.DynamicInvoke(values);
            if (result is not null && callback.IsAsync)
            {
                result = AwaitResult(ToTask(result));
            }
            return Success(callback.ResultType, result);
        }
        catch (Exception e)
        {
            return Failure(Failed(name, e));
        }
    }

    /// <summary>
    /// Starts a callback for a guest that awaits it. Returns the immediate reply (accepted, or why not);
    /// <paramref name="complete"/> later receives the encoded outcome: (succeeded, value bytes, failure message).
    /// </summary>
    public byte[] Start(string name, IReadOnlyList<ReadOnlyMemory<byte>> arguments, Action<bool, byte[], string?> complete)
    {
        if (!TryPrepare(name, arguments, out var callback, out var values, out var failure))
        {
            return Failure(failure);
        }
        Task<object?> running;
        try
        {
            var result = callback.Delegate.DynamicInvoke(values);
            running = result is not null && callback.IsAsync
                ? ToTask(result).ContinueWith(t => AwaitResult(t), TaskContinuationOptions.ExecuteSynchronously)
                : Task.FromResult(result);
        }
        catch (Exception e)
        {
            running = Task.FromException<object?>(e);
        }
        running.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                try
                {
                    complete(true, Serialize(callback.ResultType, t.Result), null);
                    return;
                }
                catch (Exception e)
                {
                    complete(false, [], Failed(name, e));
                    return;
                }
            }
            complete(false, [], Failed(name, t.Exception?.InnerException ?? (Exception?)t.Exception ?? new TaskCanceledException()));
        }, TaskScheduler.Default);
        return Accepted();
    }

    private bool TryPrepare(string name, IReadOnlyList<ReadOnlyMemory<byte>> arguments, out Callback callback, out object?[] values, out string failure)
    {
        values = [];
        failure = "";
        if (!_callbacks.TryGetValue(name, out callback!))
        {
            failure = $"No host callback named '{name}' is registered with this sandbox.";
            return false;
        }
        if (arguments.Count != callback.ParameterTypes.Length)
        {
            failure = $"Host callback '{name}' takes {callback.ParameterTypes.Length} argument(s); the guest passed {arguments.Count}.";
            return false;
        }
        values = new object?[arguments.Count];
        for (var i = 0; i < values.Length; i++)
        {
            try
            {
                values[i] = MessagePackSerializer.Deserialize(callback.ParameterTypes[i], arguments[i], IsolatedSerializer.Options);
            }
            catch (MessagePackSerializationException e)
            {
                failure = $"Argument {i + 1} of host callback '{name}' could not be read as {callback.ParameterTypes[i].Name}: {e.InnerException?.Message ?? e.Message}";
                return false;
            }
        }
        return true;
    }

    private string Failed(string name, Exception exception)
    {
        if (exception is TargetInvocationException { InnerException: { } inner })
        {
            exception = inner;
        }
        logger.LogWarning(exception, "Host callback {Callback} threw; the guest is told only that the call failed.", name);
        return $"The call to host callback '{name}' failed on the host (details are in the host's log).";
    }

    private static object? AwaitResult(Task task)
    {
        task.GetAwaiter().GetResult();
        var type = task.GetType();
        return type.IsGenericType && type.GetGenericArguments()[0].Name != "VoidTaskResult"
            ? type.GetProperty(nameof(Task<int>.Result))!.GetValue(task)
            : null;
    }

    private static Task ToTask(object result) => result switch
    {
        Task task => task,
        ValueTask valueTask => valueTask.AsTask(),
        _ => (Task)result.GetType().GetMethod(nameof(ValueTask<int>.AsTask))!.Invoke(result, null)!,
    };

    private static Type TaskResultType(Type returnType)
    {
        if (returnType == typeof(Task) || returnType == typeof(ValueTask))
        {
            return typeof(void);
        }
        if (returnType.IsGenericType && (returnType.GetGenericTypeDefinition() == typeof(Task<>) || returnType.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            return returnType.GetGenericArguments()[0];
        }
        return returnType;
    }

    private static byte[] Serialize(Type type, object? value)
    {
        if (type == typeof(void))
        {
            return [0xC0];
        }
        return MessagePackSerializer.Serialize(type, value, IsolatedSerializer.Options);
    }

    private static byte[] Success(Type type, object? value)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write(true);
        writer.WriteRaw(Serialize(type, value));
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Accepted() => Success(typeof(void), null);

    /// <summary>The reply telling the guest its call failed.</summary>
    public static byte[] Failure(string message)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write(false);
        writer.Write(message);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    private sealed record Callback(Delegate Delegate, Type[] ParameterTypes, Type ReturnType, Type ResultType)
    {
        public bool IsAsync => ReturnType != ResultType || ReturnType == typeof(Task) || ReturnType == typeof(ValueTask);
    }
}
