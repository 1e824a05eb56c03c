using System.Buffers;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Asynchronous work across the boundary, both ways. A guest method that returns an unfinished task
/// becomes an operation whose reply is sent to the host when the task completes; a guest that awaits
/// an asynchronous host callback waits on an operation the host completes later by calling back in.
/// The sandbox is single-threaded: completions run while the host pumps the event loop.
/// </summary>
internal static class PendingOperations
{
    private static readonly Dictionary<int, TaskCompletionSource<byte[]>> s_awaitingHost = new();
    private static int s_nextOperation;

    /// <summary>Reports <paramref name="task"/>'s outcome to the host when it finishes; returns the operation id.</summary>
    public static int Start(Task task, Type resultType, ResultMode mode)
    {
        var operation = ++s_nextOperation;
        task.ContinueWith(finished =>
        {
            var reply = new ArrayBufferWriter<byte>();
            try
            {
                ResultWriter.WriteCompleted(reply, finished, resultType, mode);
            }
            catch (Exception e)
            {
                reply.ResetWrittenCount();
                Replies.WriteException(reply, e);
            }
            var notice = new ArrayBufferWriter<byte>();
            var writer = new MessagePackWriter(notice);
            writer.WriteArrayHeader(3);
            writer.Write((int)HostRequestKind.OperationCompleted);
            writer.Write(operation);
            writer.Write(reply.WrittenSpan);
            writer.Flush();
            HostConnection.Exchange(notice.WrittenSpan);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return operation;
    }

    /// <summary>Registers an operation the host will complete; returns its id and the task to await.</summary>
    public static (int Operation, Task<byte[]> Completion) AwaitHost()
    {
        var operation = ++s_nextOperation;
        var completion = new TaskCompletionSource<byte[]>();
        s_awaitingHost[operation] = completion;
        return (operation, completion.Task);
    }

    /// <summary>Forgets an operation the host refused to start.</summary>
    public static void Abandon(int operation) => s_awaitingHost.Remove(operation);

    /// <summary>Completes an awaited host operation: <c>[CompleteOperation, id, succeeded, value|message]</c>.</summary>
    public static void Complete(ref MessagePackReader reader, IBufferWriter<byte> output)
    {
        var operation = reader.ReadInt32();
        var succeeded = reader.ReadBoolean();
        if (!s_awaitingHost.Remove(operation, out var completion))
        {
            reader.Skip();
            Replies.WriteBadRequest(output, $"No guest operation {operation} is waiting for the host.");
            return;
        }
        if (succeeded)
        {
            var value = reader.ReadBytes();
            completion.SetResult(value?.ToArray() ?? []);
        }
        else
        {
            completion.SetException(new HostCallbackException(reader.ReadString() ?? "The call to the host failed."));
        }
        Replies.WriteEmptySuccess(output);
    }
}
