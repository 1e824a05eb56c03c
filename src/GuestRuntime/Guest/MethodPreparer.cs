using System.Buffers;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Prepares methods the host expects sandboxes to run, in a template sandbox that new sandboxes start
/// from: loads their assemblies, resolves them, builds their runners and the serializer's formatters
/// for their targets and results. No user code runs (no constructor, static constructor or method of
/// the user's); what cannot be prepared is skipped and left for its first call to report.
/// </summary>
internal static class MethodPreparer
{
    private static readonly ArrayBufferWriter<byte> s_scratch = new(256);

    /// <summary>Handles <c>[Prepare, [[key, descriptor, [capturedField, ...]], ...]]</c> (the reader is positioned after the kind); replies the keys prepared.</summary>
    public static void Prepare(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var count = reader.ReadArrayHeader();
        var prepared = new List<ulong>(count);
        for (var i = 0; i < count; i++)
        {
            if (reader.ReadArrayHeader() != 3)
            {
                Replies.WriteBadRequest(output, "A method to prepare was malformed.");
                return;
            }
            var key = reader.ReadUInt64();
            if (MethodDescriptor.Read(ref reader) is not { } descriptor)
            {
                Replies.WriteBadRequest(output, "A method descriptor to prepare was malformed.");
                return;
            }
            var fieldCount = reader.ReadArrayHeader();
            var capturedFields = new string[fieldCount];
            for (var f = 0; f < fieldCount; f++)
            {
                capturedFields[f] = reader.ReadString() ?? "";
            }
            try
            {
                if (DelegateInvoker.Prepare(key, descriptor, out _) is not { } runner)
                {
                    continue;
                }
                if (runner.NeedsTarget)
                {
                    ClosureSerializer.Prepare(runner.DeclaringType, capturedFields);
                }
                if (runner.ResultType is { } resultType && resultType != typeof(void) && !ResultWriter.IsTaskLike(resultType))
                {
                    ClosureSerializer.PrepareFormatter(resultType);
                }
                runner.Rehearse(s_scratch);
                prepared.Add(key);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Not preparable here (a type that does not load, say): its first call reports it.
            }
        }

        var writer = new MessagePackWriter(output);
        Replies.BeginSuccess(ref writer);
        writer.WriteArrayHeader(prepared.Count);
        foreach (var key in prepared)
        {
            writer.Write(key);
        }
        writer.Flush();
    }
}
