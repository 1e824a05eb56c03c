using System.Buffers;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Writes the replies the guest sends back: <c>[Success, result]</c>,
/// <c>[GuestException, type, message, stackTrace, fullText]</c> or <c>[BadRequest, message]</c>.
/// </summary>
internal static class Replies
{
    /// <summary>A successful reply carrying <paramref name="result"/> (serialized bytes, or null for no value).</summary>
    public static void WriteSuccess(IBufferWriter<byte> output, ReadOnlySpan<byte> result, bool hasResult)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write((int)ReplyStatus.Success);
        if (hasResult)
        {
            writer.Write(result);
        }
        else
        {
            writer.WriteNil();
        }
        writer.Flush();
    }

    /// <summary>A reply reporting an exception thrown by guest code.</summary>
    public static void WriteException(IBufferWriter<byte> output, Exception exception)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(5);
        writer.Write((int)ReplyStatus.GuestException);
        writer.Write(exception.GetType().FullName);
        writer.Write(MessageOf(exception));
        writer.Write(exception.StackTrace);
        writer.Write(exception.ToString());
        writer.Flush();
    }

    /// <summary>The exception's message; file errors name their file even where the runtime left the message empty.</summary>
    private static string MessageOf(Exception exception) => exception switch
    {
        FileNotFoundException { FileName: { Length: > 0 } file } e when !e.Message.Contains(file, StringComparison.Ordinal) =>
            $"Could not load file or assembly '{file}'. {e.Message}".TrimEnd(),
        _ => exception.Message,
    };

    /// <summary>A reply saying the request could not be carried out as asked.</summary>
    public static void WriteBadRequest(IBufferWriter<byte> output, string message)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write((int)ReplyStatus.BadRequest);
        writer.Write(message);
        writer.Flush();
    }
}
