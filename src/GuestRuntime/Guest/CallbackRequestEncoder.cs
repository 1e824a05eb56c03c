namespace IsolateGrains.Guest;

/// <summary>
/// Encodes the common callback request, <c>[kind, name, [args...], operation?]</c> with arguments that are all null,
/// bool, int, long, double, string or byte[], straight into a span. In the guest's interpreter, MessagePackWriter's
/// machinery (buffer writer, span bookkeeping, flush) costs about as much as the host's whole handling of a callback;
/// these few shapes are written directly instead. The bytes are the same MessagePackWriter writes for these values
/// (integers in their smallest form, unsigned when not negative: a host callback taking <c>object</c> sees the same
/// types either way); requests with any other argument are left to it.
/// </summary>
internal static class CallbackRequestEncoder
{
    // Requests that may be larger than this are left to MessagePackWriter, which grows its buffer as it goes (the
    // estimate for a string is three bytes a character).
    private const long LargestMeasured = 64 * 1024;

    /// <summary>The most bytes the request can take, or -1 when an argument is not one of the handled types (or the request is large).</summary>
    public static int MeasureOrNegative(ReadOnlySpan<byte> name, object?[] args)
    {
        long size = 1 + 5 + 5 + name.Length + 5 + 5;
        foreach (var arg in args)
        {
            switch (arg)
            {
                case null or bool:
                    size += 1;
                    break;
                case int:
                    size += 5;
                    break;
                case long or double:
                    size += 9;
                    break;
                case string text:
                    size += 5 + 3L * (text.Length + 1); // Encoding.UTF8.GetMaxByteCount, without its overflow check
                    break;
                case byte[] bytes when bytes.GetType() == typeof(byte[]):
                    // Exactly byte[]: arrays of sbyte or of byte-sized enums pass "is byte[]" too, but are not binary.
                    size += 5 + bytes.Length;
                    break;
                default:
                    return -1;
            }
        }
        return size <= LargestMeasured ? (int)size : -1;
    }

    /// <summary>Writes the request (the arguments passed <see cref="MeasureOrNegative"/>); returns the bytes written.</summary>
    public static int Write(Span<byte> destination, int kind, ReadOnlySpan<byte> name, object?[] args, int? operation)
    {
        var at = 0;
        PrimitiveValueWriter.WriteArrayHeader(destination, ref at, operation is null ? 3 : 4);
        PrimitiveValueWriter.WriteInteger(destination, ref at, kind);
        PrimitiveValueWriter.WriteStringHeader(destination, ref at, name.Length);
        ByteCopy.Copy(name, destination[at..]);
        at += name.Length;
        PrimitiveValueWriter.WriteArrayHeader(destination, ref at, args.Length);
        foreach (var arg in args)
        {
            switch (arg)
            {
                case null:
                    destination[at++] = 0xc0;
                    break;
                case bool value:
                    destination[at++] = value ? (byte)0xc3 : (byte)0xc2;
                    break;
                case int value:
                    PrimitiveValueWriter.WriteInteger(destination, ref at, value);
                    break;
                case long value:
                    PrimitiveValueWriter.WriteInteger(destination, ref at, value);
                    break;
                case double value:
                    PrimitiveValueWriter.WriteDouble(destination, ref at, value);
                    break;
                case string text:
                    PrimitiveValueWriter.WriteString(destination, ref at, text);
                    break;
                case byte[] bytes when bytes.GetType() == typeof(byte[]):
                    PrimitiveValueWriter.WriteBinaryHeader(destination, ref at, bytes.Length);
                    ByteCopy.Copy(bytes, destination[at..]);
                    at += bytes.Length;
                    break;
                default:
                    throw new ArgumentException($"Arguments of type {arg.GetType()} are not encoded here.", nameof(args));
            }
        }
        if (operation is { } id)
        {
            PrimitiveValueWriter.WriteInteger(destination, ref at, id);
        }
        return at;
    }
}
