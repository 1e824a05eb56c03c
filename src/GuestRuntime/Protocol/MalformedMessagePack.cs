using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// What MessagePack's reader throws for bytes that are not what they claim to be: a wrong code, the end reached, a
/// number too large for its type, or a length that runs past the end (its sequence reader throws
/// <see cref="ArgumentOutOfRangeException"/> for that). Parsers of bytes from outside — guest replies on the host,
/// requests in the guest — catch exactly these and report the bytes as malformed.
/// </summary>
internal static class MalformedMessagePack
{
    /// <summary>True for an exception that MessagePack's reading of malformed bytes throws (code that runs only MessagePack's reader).</summary>
    public static bool Is(Exception e) =>
        e is MessagePackSerializationException or EndOfStreamException or OverflowException or ArgumentOutOfRangeException;

    /// <summary>
    /// Like <see cref="Is"/>, for an exception from deserializing that may also have run the user's code (constructors,
    /// setters): every exception in the chain must be the serializer's own complaint, and an
    /// <see cref="ArgumentOutOfRangeException"/> counts only when MessagePack's code threw it.
    /// </summary>
    public static bool IsOnlyTheSerializers(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            var serializers = current is MessagePackSerializationException or EndOfStreamException or OverflowException
                || (current is ArgumentOutOfRangeException && current.TargetSite?.DeclaringType?.Assembly == typeof(MessagePackReader).Assembly);
            if (!serializers)
            {
                return false;
            }
        }
        return true;
    }
}
