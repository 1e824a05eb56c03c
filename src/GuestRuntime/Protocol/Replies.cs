using System.Buffers;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Writes the replies the guest sends back: <c>[Success, value]</c> (the result inline, nil for none),
/// <c>[GuestException, type, message, stackTrace, fullText]</c> or <c>[BadRequest, message]</c>.
/// </summary>
internal static class Replies
{
    /// <summary>Starts a successful reply; the caller writes exactly one value next and flushes.</summary>
    public static void BeginSuccess(ref MessagePackWriter writer)
    {
        writer.WriteArrayHeader(2);
        writer.Write((int)ReplyStatus.Success);
    }

    /// <summary>A successful reply with no value: the three bytes of <c>[Success, nil]</c>, written without a MessagePackWriter (whose setup costs the guest's interpreter more than the reply).</summary>
    public static void WriteEmptySuccess(IBufferWriter<byte> output)
    {
        var destination = output.GetSpan(3);
        destination[0] = 0x92;
        destination[1] = (byte)ReplyStatus.Success;
        destination[2] = MessagePackCode.Nil;
        output.Advance(3);
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

    /// <summary>A reply saying the request could not be carried out as asked.</summary>
    public static void WriteBadRequest(IBufferWriter<byte> output, string message)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write((int)ReplyStatus.BadRequest);
        writer.Write(message);
        writer.Flush();
    }

    /// <summary>The exception's message; file errors name their file even where the runtime left the message empty.</summary>
    private static string MessageOf(Exception exception) => exception switch
    {
        FileNotFoundException { FileName: { Length: > 0 } file } e when !e.Message.Contains(file, StringComparison.Ordinal) =>
            $"Could not load file or assembly '{file}'. {e.Message}".TrimEnd(),
        _ => exception.Message,
    };
}
