using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace IsolateGrains.Guest;

/// <summary>
/// Reads a callback's result when it is an int, long, bool or string in the compact forms the host writes them,
/// straight from the reply's bytes: for these, building a MessagePackReader and going through the serializer costs
/// the guest's interpreter more than the rest of reading the reply. Anything else (another type, another form, or
/// bytes left over) is left to the serializer, which also reports malformed values.
/// </summary>
internal static class PrimitiveValueReader
{
    /// <summary>Reads <paramref name="encoded"/>, which must be exactly one value, as <typeparamref name="T"/>; false to use the serializer.</summary>
    public static bool TryRead<T>(ReadOnlySpan<byte> encoded, out T value)
    {
        value = default!;
        if (typeof(T) == typeof(int))
        {
            if (TryReadInteger(encoded, out var number) && number is >= int.MinValue and <= int.MaxValue)
            {
                var narrow = (int)number;
                value = Unsafe.As<int, T>(ref narrow);
                return true;
            }
            return false;
        }
        if (typeof(T) == typeof(long))
        {
            if (TryReadInteger(encoded, out var number))
            {
                value = Unsafe.As<long, T>(ref number);
                return true;
            }
            return false;
        }
        if (typeof(T) == typeof(bool))
        {
            if (encoded.Length == 1 && encoded[0] is 0xc2 or 0xc3)
            {
                var flag = encoded[0] == 0xc3;
                value = Unsafe.As<bool, T>(ref flag);
                return true;
            }
            return false;
        }
        if (typeof(T) == typeof(string))
        {
            if (TryReadString(encoded, out var text))
            {
                value = Unsafe.As<string?, T>(ref text);
                return true;
            }
            return false;
        }
        return false;
    }

    /// <summary>
    /// Reads an unsigned integer (any of MessagePack's forms for one that is not negative) at <paramref name="at"/> of
    /// <paramref name="bytes"/> and moves past it.
    /// </summary>
    public static SpanRead ReadUnsigned(ReadOnlySpan<byte> bytes, ref int at, out ulong value)
    {
        value = 0;
        if (at >= bytes.Length)
        {
            return SpanRead.Truncated;
        }
        var code = bytes[at];
        var size = code switch
        {
            <= 0x7f => 0,
            0xcc => 1,
            0xcd => 2,
            0xce => 4,
            0xcf => 8,
            _ => -1,
        };
        if (size < 0)
        {
            return SpanRead.OtherType;
        }
        if (at + 1 + size > bytes.Length)
        {
            return SpanRead.Truncated;
        }
        var field = bytes.Slice(at + 1, size);
        value = size switch
        {
            0 => code,
            1 => field[0],
            2 => BinaryPrimitives.ReadUInt16BigEndian(field),
            4 => BinaryPrimitives.ReadUInt32BigEndian(field),
            _ => BinaryPrimitives.ReadUInt64BigEndian(field),
        };
        at += 1 + size;
        return SpanRead.Done;
    }

    private static bool TryReadInteger(ReadOnlySpan<byte> encoded, out long number)
    {
        number = 0;
        if (encoded.IsEmpty)
        {
            return false;
        }
        var code = encoded[0];
        switch (code)
        {
            case <= 0x7f when encoded.Length == 1:
                number = code;
                return true;
            case >= 0xe0 when encoded.Length == 1:
                number = (sbyte)code;
                return true;
            case 0xcc when encoded.Length == 2:
                number = encoded[1];
                return true;
            case 0xcd when encoded.Length == 3:
                number = BinaryPrimitives.ReadUInt16BigEndian(encoded[1..]);
                return true;
            case 0xce when encoded.Length == 5:
                number = BinaryPrimitives.ReadUInt32BigEndian(encoded[1..]);
                return true;
            case 0xd0 when encoded.Length == 2:
                number = (sbyte)encoded[1];
                return true;
            case 0xd1 when encoded.Length == 3:
                number = BinaryPrimitives.ReadInt16BigEndian(encoded[1..]);
                return true;
            case 0xd2 when encoded.Length == 5:
                number = BinaryPrimitives.ReadInt32BigEndian(encoded[1..]);
                return true;
            case 0xd3 when encoded.Length == 9:
                number = BinaryPrimitives.ReadInt64BigEndian(encoded[1..]);
                return true;
            default:
                return false; // uint64 and anything else: the serializer decides
        }
    }

    private static bool TryReadString(ReadOnlySpan<byte> encoded, out string? text)
    {
        text = null;
        if (encoded.IsEmpty)
        {
            return false;
        }
        var code = encoded[0];
        int start, length;
        switch (code)
        {
            case 0xc0 when encoded.Length == 1:
                return true; // nil: a null string
            case >= 0xa0 and <= 0xbf:
                (start, length) = (1, code & 0x1f);
                break;
            case 0xd9 when encoded.Length >= 2:
                (start, length) = (2, encoded[1]);
                break;
            case 0xda when encoded.Length >= 3:
                (start, length) = (3, BinaryPrimitives.ReadUInt16BigEndian(encoded[1..]));
                break;
            default:
                return false;
        }
        if (encoded.Length != start + length)
        {
            return false;
        }
        text = Encoding.UTF8.GetString(encoded[start..]);
        return true;
    }
}

/// <summary>How reading a value straight from bytes went.</summary>
internal enum SpanRead
{
    /// <summary>The value was read.</summary>
    Done,
    /// <summary>The bytes end before the value does.</summary>
    Truncated,
    /// <summary>The bytes hold a value of another type.</summary>
    OtherType,
}
