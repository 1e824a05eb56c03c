using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Turns what a guest method returned into a reply: a serialized copy or a handle; for tasks, the
/// awaited result when the task has finished, else a "pending" reply whose real reply is sent to the
/// host when the task completes (during a later pump of the event loop).
/// </summary>
internal static class ResultWriter
{
    /// <summary>Writes the reply for <paramref name="result"/>, declared as <paramref name="declaredType"/>.</summary>
    public static void Write(ArrayBufferWriter<byte> output, object? result, Type declaredType, ResultMode mode) =>
        Write(output, result, declaredType, mode, IsTaskLike(declaredType));

    /// <summary>Like <see cref="Write(ArrayBufferWriter{byte}, object?, Type, ResultMode)"/>, with <see cref="IsTaskLike"/> of the declared type already known.</summary>
    public static void Write(ArrayBufferWriter<byte> output, object? result, Type declaredType, ResultMode mode, bool declaredTaskLike)
    {
        if (declaredTaskLike && result is not null && TryGetTask(result, declaredType, out var task, out var resultType))
        {
            if (task.IsCompleted)
            {
                WriteCompleted(output, task, resultType, mode);
                return;
            }
            var operation = PendingOperations.Start(task, resultType, mode);
            var writer = new MessagePackWriter(output);
            writer.WriteArrayHeader(2);
            writer.Write((int)ReplyStatus.Pending);
            writer.Write(operation);
            writer.Flush();
            return;
        }
        WriteFinal(output, result, declaredType, mode);
    }

    /// <summary>Writes the reply for a finished task.</summary>
    public static void WriteCompleted(ArrayBufferWriter<byte> output, Task task, Type resultType, ResultMode mode)
    {
        if (task.IsFaulted)
        {
            var error = task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerException! : task.Exception;
            Replies.WriteException(output, error);
            return;
        }
        if (task.IsCanceled)
        {
            Replies.WriteException(output, new TaskCanceledException(task));
            return;
        }
        var value = resultType == typeof(void) ? null : task.GetType().GetProperty(nameof(Task<int>.Result))!.GetValue(task);
        WriteFinal(output, value, resultType, mode);
    }

    private static void WriteFinal(ArrayBufferWriter<byte> output, object? result, Type declaredType, ResultMode mode)
    {
        if (mode == ResultMode.Value && PrimitiveValueWriter.TryWriteBoxedSuccess(output, result, declaredType))
        {
            return;
        }
        var writer = new MessagePackWriter(output);
        Replies.BeginSuccess(ref writer);
        if (declaredType == typeof(void) || (mode == ResultMode.Handle && result is null))
        {
            writer.WriteNil();
        }
        else if (mode == ResultMode.Handle)
        {
            writer.WriteArrayHeader(3);
            writer.Write(GuestObjects.Add(result!));
            writer.Write(result!.GetType().FullName);
            writer.Write(result.GetType().Assembly.GetName().Name);
        }
        else
        {
            TypeCodec.For(declaredType).Serialize(ref writer, result);
        }
        writer.Flush();
    }

    /// <summary>True for the awaitable types the boundary understands: Task, Task&lt;T&gt;, ValueTask, ValueTask&lt;T&gt;.</summary>
    public static bool IsTaskLike(Type type) =>
        typeof(Task).IsAssignableFrom(type) || type == typeof(ValueTask) || (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ValueTask<>));

    private static bool TryGetTask(object result, Type declaredType, out Task task, out Type resultType)
    {
        task = null!;
        resultType = typeof(void);
        if (!IsTaskLike(declaredType))
        {
            return false;
        }
        switch (result)
        {
            case Task plain:
                task = plain;
                break;
            case ValueTask valueTask:
                task = valueTask.AsTask();
                break;
            default:
                // ValueTask<T>: convert through its own AsTask.
                task = (Task)result.GetType().GetMethod(nameof(ValueTask<int>.AsTask), BindingFlags.Public | BindingFlags.Instance)!.Invoke(result, null)!;
                break;
        }
        var taskType = task.GetType();
        while (taskType is not null && !(taskType.IsGenericType && taskType.GetGenericTypeDefinition() == typeof(Task<>)))
        {
            taskType = taskType.BaseType;
        }
        // A Task<VoidTaskResult> (what async Task methods return at run time) has no result for the caller.
        resultType = declaredType == typeof(Task) || declaredType == typeof(ValueTask) || taskType is null
            ? typeof(void)
            : taskType.GetGenericArguments()[0];
        return true;
    }
}
